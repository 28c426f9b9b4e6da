package app

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"

	"haven/shared/cert"
	"haven/shared/record"
	"haven/shared/wire"
)

// The device file (device.json in the data folder, mode 0600) says which
// relay this computer syncs with and who may sign in. It holds no key in
// the clear: the store's master key is sealed once per staff member under a
// key derived from their PIN (Argon2id), so a copied data folder is useless
// without a PIN; each member of staff's own signing key is sealed under
// their PIN alone, so one person's PIN never unseals another's key; the
// relay credential and the organisation key learnt at enrolment are sealed
// under the master key.
//
// The file confers nothing. A role comes only from a certificate that the
// organisation key signed for the staff member's own public key (kept in
// the encrypted store); names and requested roles here are what the unlock
// screen shows before that. Editing the file, copying one person's entry
// to another's ID or changing a requested role can only lock a person out.
type deviceFile struct {
	Version    int      `json:"version"`
	DeviceID   string   `json:"deviceId"`
	DeviceName string   `json:"deviceName"`
	Org        string   `json:"org"`
	OrgName    string   `json:"orgName"`
	OrgKind    string   `json:"orgKind"`
	Homes      []string `json:"homes,omitempty"`
	Directory  string   `json:"directory,omitempty"`
	// RelayURLs are the relay's addresses (ws://…/sync or wss://…), one
	// per node of a relay that runs as a cluster, in the order the client
	// goes round them.
	RelayURLs []string `json:"relayUrls,omitempty"`
	// RelayURL is the first of RelayURLs, for a file read by a version
	// of Haven that knew one address; a file such a version wrote has only
	// this, and loadDevice takes it as the list.
	RelayURL   string `json:"relayUrl"`
	PeerID     string `json:"peerId"`
	StorageID  string `json:"storageId"`
	Credential []byte `json:"credential"` // sealed with the master key
	// LockAfter is the idle time before the screen locks, set by the home.
	LockAfterSeconds int           `json:"lockAfterSeconds"`
	Demo             bool          `json:"demo,omitempty"` // NHS test-range numbers allowed
	Staff            []staffRecord `json:"staff"`
	// Anchor is the organisation key learnt at enrolment, sealed with the
	// master key.
	Anchor []byte `json:"anchor"`
}

// staffRecord is one person who may sign in on this computer.
type staffRecord struct {
	ID   string `json:"id"`
	Name string `json:"name"` // for the unlock screen; the certificate's name is what counts
	// Salt and Sealed: the master key sealed under Argon2id(PIN, Salt).
	Salt   []byte `json:"salt"`
	Sealed []byte `json:"sealed"`
	// SealedKey: the person's Ed25519 signing key (its seed) sealed under
	// the same PIN key.
	SealedKey []byte `json:"sealedKey"`
	// Request is the certificate request made for them: until the
	// certificate comes, what the screen shows (marked not yet certified).
	Request wire.CertRequest `json:"request"`
	// Failures and LockedUntil slow guessing at the unlock screen while the
	// store is closed; once it is open they are kept there (pins.go).
	Failures    int       `json:"failures,omitempty"`
	LockedUntil time.Time `json:"lockedUntil,omitempty"`
}

const deviceFileName = "device.json"

// Errors a person can act on.
var (
	ErrNotEnrolled = errors.New("this computer is not set up yet: enrol it with the relay address and a one-time code")
	ErrWrongPIN    = errors.New("that PIN is not right")
	ErrTooManyPINs = errors.New("too many wrong PINs: wait a minute, then try again")
	ErrWeakPIN     = errors.New("a PIN needs at least 6 digits, not all the same and not in sequence")
)

func loadDevice(dir string) (*deviceFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, deviceFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	var d deviceFile
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("device file %s is damaged: %w", filepath.Join(dir, deviceFileName), err)
	}
	if len(d.RelayURLs) == 0 && d.RelayURL != "" {
		d.RelayURLs = []string{d.RelayURL}
	}
	return &d, nil
}

// save writes the device file atomically (temp file, fsync, rename).
func (d *deviceFile) save(dir string) error {
	if len(d.RelayURLs) > 0 {
		d.RelayURL = d.RelayURLs[0]
	}
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, deviceFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, deviceFileName))
}

// CheckPIN enforces the minimum: six digits, not one repeated digit and not
// a run such as 123456.
func CheckPIN(pin string) error {
	if len(pin) < 6 {
		return ErrWeakPIN
	}
	for _, r := range pin {
		if !unicode.IsDigit(r) {
			return ErrWeakPIN
		}
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		same = same && pin[i] == pin[0]
		up = up && pin[i] == pin[i-1]+1
		down = down && pin[i] == pin[i-1]-1
	}
	if same || up || down {
		return ErrWeakPIN
	}
	return nil
}

// pinKey derives the key that seals the master key. Argon2id with 64 MiB
// and 3 passes takes a fraction of a second here: fast enough to unlock,
// slow and memory-hungry enough to make guessing a copied folder's PINs
// expensive.
func pinKey(pin string, salt []byte) []byte {
	return argon2.IDKey([]byte(pin), salt, 3, 64*1024, 2, 32)
}

func seal(key, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, nil), nil
}

func unseal(key, sealed []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomID(prefix string) string { return prefix + hex.EncodeToString(randomBytes(8)) }

// newStaff makes a staff account: a signing key pair made here, the
// master key and the signing key sealed under their PIN, and the
// certificate request for the relay, signed with the new key (and, when a
// certified home manager adds a care worker or senior carer, vouched for
// by the manager's signature).
func newStaff(name string, role record.Role, reg, pin string, master []byte, voucher *record.KeySigner) (staffRecord, error) {
	return newStaffKey(randomID("staff-"), name, role, reg, pin, master, voucher)
}

// newStaffKey is newStaff for a given staff ID: a PIN reset keeps the
// person's ID (what they recorded stays theirs) and gives them a new key.
func newStaffKey(id, name string, role record.Role, reg, pin string, master []byte, voucher *record.KeySigner) (staffRecord, error) {
	if err := CheckPIN(pin); err != nil {
		return staffRecord{}, err
	}
	name, err := cert.CleanText("name", name, 200)
	if err != nil || name == "" {
		return staffRecord{}, errors.New("a staff account needs a name (plain text, at most 200 characters)")
	}
	if role.Label() == "" {
		return staffRecord{}, errors.New("choose the person's role")
	}
	if reg, err = record.ValidateRegistration(role, reg); err != nil {
		return staffRecord{}, err
	}
	pub, priv := cert.NewKey()
	salt := randomBytes(16)
	key := pinKey(pin, salt)
	sealed, err := seal(key, master)
	if err != nil {
		return staffRecord{}, err
	}
	sealedKey, err := seal(key, priv.Seed())
	if err != nil {
		return staffRecord{}, err
	}
	s := staffRecord{ID: id, Name: name, Salt: salt, Sealed: sealed, SealedKey: sealedKey}
	s.Request = wire.CertRequest{ID: randomID("req-"), Staff: s.ID, Name: name, Role: string(role), Registration: reg, PublicKey: pub}
	s.Request.Proof = ed25519.Sign(priv, s.Request.SigningBytes())
	if voucher != nil && (role == record.CareWorker || role == record.SeniorCarer) {
		s.Request.By = voucher.Cert
		s.Request.BySig = voucher.Sign(s.Request.SigningBytes())
	}
	return s, nil
}

// EnrollRequest is what the first-run screen collects.
type EnrollRequest struct {
	// RelayURL is the relay's address, e.g. http://127.0.0.1:8450 or
	// https://relay.example.nhs.uk, or the addresses of its nodes
	// separated by commas: the computer enrols at the first that answers.
	RelayURL string
	Code     string // one-time code from syncd admin enroll
	// The first staff account on this computer (usually the home manager).
	Name, RegNo, PIN string
	Role             record.Role
	// Demo sets the computer up for a demonstration: NHS test-range
	// numbers allowed, and the demo staff accounts (DemoAccounts) added
	// beside the first.
	Demo bool
}

// Enroll exchanges a one-time code for this computer's credential and
// creates the first staff account. It writes the device file; Open the app
// afterwards.
func Enroll(ctx context.Context, dir string, req EnrollRequest) error {
	if _, err := loadDevice(dir); err == nil {
		return errors.New("this computer is already set up")
	}
	master := randomBytes(32)
	var staff []staffRecord
	if req.Demo {
		demo, err := demoStaff(master)
		if err != nil {
			return err
		}
		staff = demo
	}
	if req.Name != "" || !req.Demo {
		first, err := newStaff(req.Name, req.Role, req.RegNo, req.PIN, master, nil)
		if err != nil {
			return err
		}
		staff = append([]staffRecord{first}, staff...)
	}
	bases, err := relayBases(req.RelayURL)
	if err != nil {
		return err
	}
	er, base, err := redeem(ctx, bases, req.Code)
	if err != nil {
		return err
	}
	if len(er.Anchor) != ed25519.PublicKeySize {
		return errors.New("the relay sent no organisation key: it may be an older version; ask your administrator")
	}
	cred, err := seal(master, []byte(er.Credential))
	if err != nil {
		return err
	}
	anchor, err := seal(master, er.Anchor)
	if err != nil {
		return err
	}
	d := &deviceFile{
		Version: 1, DeviceID: er.Device, DeviceName: er.DeviceName, Org: er.Org, OrgName: er.OrgName, OrgKind: er.OrgKind,
		Homes: er.Homes, Directory: er.Directory, RelayURLs: syncURLs(base, bases, er.RelayURLs), PeerID: randomID("desktop-"), StorageID: randomID("store-"),
		Credential: cred, LockAfterSeconds: 300, Demo: req.Demo, Staff: staff, Anchor: anchor,
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return d.save(dir)
}
