package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	badger "github.com/dgraph-io/badger/v4"
)

// errDamagedFolder is what a damaged data folder reports, with the way out a
// person can take.
var errDamagedFolder = errors.New("the data folder is damaged: move it aside and let this computer download its records again, or restore a backup")

// checkTables reads the footer of every table the manifest lists before
// Badger opens them. Badger opens tables on goroutines of its own and panics
// there when a footer points outside its file (a table cut short by a
// failing disk or a bad copy); no recover can catch that, so a truncated
// table would take the whole program down at start. Here the same offsets
// are checked first and a damaged table becomes an error naming the file.
//
// Only tables in the manifest are checked: a table being written when the
// power went is not in the manifest yet, and Badger deletes it.
func checkTables(dir string, bo badger.Options) error {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return nil // a new folder, or one Badger will explain itself
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, bo.ExternalMagicVersion, bo)
	if err != nil {
		return nil // Badger reports a bad manifest with its own error
	}
	for id := range m.Tables {
		name := filepath.Join(dir, fmt.Sprintf("%06d.sst", id))
		if err := checkTableFooter(name); err != nil {
			return fmt.Errorf("%w (%s: %v)", errDamagedFolder, filepath.Base(name), err)
		}
	}
	return nil
}

// checkTableFooter follows a table's footer from its end as Badger does:
// the last 4 bytes give the checksum's length, the 4 before the checksum the
// index's length; each must fit in what is left of the file.
func checkTableFooter(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pos := st.Size()
	u32 := func(at int64) (int64, error) {
		var b [4]byte
		if _, err := f.ReadAt(b[:], at); err != nil && err != io.EOF {
			return 0, err
		}
		return int64(binary.BigEndian.Uint32(b[:])), nil
	}
	if pos < 8 {
		return fmt.Errorf("%d bytes, too short for a table", pos)
	}
	pos -= 4
	sumLen, err := u32(pos)
	if err != nil {
		return err
	}
	if sumLen > pos-4 {
		return fmt.Errorf("checksum of %d bytes does not fit in a %d-byte file", sumLen, st.Size())
	}
	pos -= sumLen + 4
	indexLen, err := u32(pos)
	if err != nil {
		return err
	}
	if indexLen > pos {
		return fmt.Errorf("index of %d bytes does not fit in a %d-byte file", indexLen, st.Size())
	}
	return nil
}
