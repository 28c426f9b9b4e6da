package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Every value the store writes (except the raw copy kept beside a quarantine record) is framed:
//
//	+-------------+--------------------+----------------------------+---------+
//	| version (1) | payload length (4) | CRC-32C of the payload (4) | payload |
//	+-------------+--------------------+----------------------------+---------+
//
// Badger checksums its files too, but the frame is checked on every read of every value, inline
// or not, so truncation or a flipped bit anywhere between our write and our read is caught here.
const (
	frameVersion    = 1
	frameHeaderSize = 9
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame returns a new slice holding payload's frame; payload may be reused afterwards.
func encodeFrame(payload []byte) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(payload))
	b[0] = frameVersion
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[5:9], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// decodeFrame checks b and returns its payload, a subslice of b. Errors match ErrCorrupt.
func decodeFrame(b []byte) ([]byte, error) {
	if len(b) < frameHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the frame header", ErrCorrupt, len(b))
	}
	if b[0] != frameVersion {
		return nil, fmt.Errorf("%w: unknown frame version %d", ErrCorrupt, b[0])
	}
	n := binary.BigEndian.Uint32(b[1:5])
	payload := b[frameHeaderSize:]
	if uint64(len(payload)) != uint64(n) {
		return nil, fmt.Errorf("%w: frame says %d bytes, found %d", ErrCorrupt, n, len(payload))
	}
	if sum := crc32.Checksum(payload, castagnoli); sum != binary.BigEndian.Uint32(b[5:9]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return payload, nil
}

// Snapshot payload: upTo (8 bytes) then the snapshot.
func encodeSnapshot(upTo uint64, snapshot []byte) []byte {
	p := make([]byte, 0, seqLen+len(snapshot))
	p = binary.BigEndian.AppendUint64(p, upTo)
	return encodeFrame(append(p, snapshot...))
}

func decodeSnapshot(b []byte) (upTo uint64, snapshot []byte, err error) {
	p, err := decodeFrame(b)
	if err != nil {
		return 0, nil, err
	}
	if len(p) < seqLen {
		return 0, nil, fmt.Errorf("%w: snapshot header missing", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(p), p[seqLen:], nil
}
