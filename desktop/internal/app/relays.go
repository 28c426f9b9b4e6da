package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"haven/shared/wire"
)

// A relay may run as several nodes (syncd's cluster), each with an address
// of its own. The computer enrols at one of them, keeps every node's
// address in device.json, and its client moves round them when the node
// it uses goes.

var errRelayAddress = errors.New("the relay address starts with https:// (or http:// on this computer)")

// relayBases reads the relay address typed at enrolment: one, or several
// separated by commas, each http:// or https://, without a trailing slash.
func relayBases(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimRight(strings.TrimSpace(b), "/")
		if b == "" {
			continue
		}
		if !strings.HasPrefix(b, "http://") && !strings.HasPrefix(b, "https://") {
			return nil, errRelayAddress
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errRelayAddress
	}
	return out, nil
}

// redeem exchanges the one-time code at the first of bases that takes
// it, and returns the relay's answer and the address that gave it. A node
// that cannot be reached, or refuses the code, leads to the next: a node
// that has not caught up with the cluster may not know yet a code made on
// another, and a relay of one node never knows another relay's. If none
// takes it, a node's own refusal says why better than an address that did
// not answer.
func redeem(ctx context.Context, bases []string, code string) (wire.Enrollment, string, error) {
	var refused, unreached error
	for _, base := range bases {
		er, answered, err := redeemAt(ctx, base, code)
		switch {
		case err == nil:
			return er, base, nil
		case answered && refused == nil:
			refused = err
		case !answered && unreached == nil:
			unreached = err
		}
	}
	if refused != nil {
		return wire.Enrollment{}, "", refused
	}
	return wire.Enrollment{}, "", unreached
}

// redeemAt asks the relay at base for the credential; answered is false
// when the relay could not be reached.
func redeemAt(ctx context.Context, base, code string) (er wire.Enrollment, answered bool, err error) {
	body, _ := json.Marshal(map[string]string{"code": code})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/enroll", bytes.NewReader(body))
	if err != nil {
		return er, false, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(hreq)
	if err != nil {
		return er, false, fmt.Errorf("cannot reach the relay at %s: check the address and the connection", base)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&er); err != nil || resp.StatusCode != http.StatusOK {
		if er.Error != "" {
			return er, true, errors.New(er.Error)
		}
		return er, true, fmt.Errorf("the relay refused the code (%s)", resp.Status)
	}
	return er, true, nil
}

// syncURL is the websocket address of the relay at base.
func syncURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/sync" }

// syncURLs are the websocket addresses the computer keeps after enrolling
// at base: the nodes the relay listed, or else the addresses typed. A
// listed address is kept only if it is http:// or https://, and only
// https:// when the computer enrolled over https://, so that a relay
// reached securely never has the credential sent in the clear. The
// relay's list is kept in its order, but starting at a node drawn at
// random, so that a home's computers spread over the nodes instead of
// all using the first.
func syncURLs(base string, typed, listed []string) []string {
	var kept []string
	for _, s := range listed {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && strings.HasPrefix(base, "http://")) {
			continue
		}
		kept = append(kept, syncURL(s))
	}
	if len(kept) == 0 {
		for _, b := range typed {
			kept = append(kept, syncURL(b))
		}
		return kept
	}
	start := rand.N(len(kept))
	return append(kept[start:], kept[:start]...)
}
