package loadtest

import (
	"haven/shared/rig"
)

// countingProxy forwards loopback TCP connections to a server and counts the
// bytes each way: the bytes a client puts on the wire, as TCP payload (HTTP
// upgrade, websocket framing and messages; not TCP/IP headers). It stands in
// for a counter inside the client, which shared/transport does not expose.
// It is the rig's fault proxy on a perfect line.
type countingProxy struct {
	*rig.Link
	last lastByte // when the latest byte passed
}

// startProxy listens on a free loopback port and forwards to target.
func startProxy(target string) (*countingProxy, error) {
	l, err := rig.NewLink("counting", "127.0.0.1:0", target, rig.Profile{}, 1)
	if err != nil {
		return nil, err
	}
	return &countingProxy{Link: l, last: lastByte{l}}, nil
}

// Bytes returns the counts so far: client to server, server to client.
func (p *countingProxy) Bytes() (up, down int64) {
	s := p.Stats()
	return s.BytesUp, s.BytesDown
}

// lastByte reads the link's last byte time as Unix nanoseconds (0 before
// the first byte).
type lastByte struct{ l *rig.Link }

func (b lastByte) Load() int64 {
	t := b.l.LastByte()
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
