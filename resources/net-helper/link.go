package main

// QEMU's stream netdev: each Ethernet frame as a 4-byte big-endian length, then the frame.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxFrame bounds a frame from the guest: the NIC's MTU is 1500 (no offloads on a stream
// netdev), so anything near this is already hostile; it is refused, and the link closed.
const maxFrame = 65535

var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one frame into buf (grown as needed up to maxFrame) and returns it.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if n < 14 {
		return nil, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeFrame writes one frame made of parts.
func writeFrame(w *bufio.Writer, parts [][]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(n))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}
