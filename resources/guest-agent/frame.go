// Frames of the Spritely guest agent protocol (docs/guest-agent.md): one byte stream between the
// host and this agent carries many sessions, so every message is a length-prefixed frame
//
//	u32 length | u8 type | u32 session | payload        (big-endian; length counts type+session+payload)
//
// with a hard maximum, and a reader that can find its way back into the stream: after a restore
// or a reconnect the port may start in the middle of an old frame, so until the host's HELLO is
// seen the reader hunts for its fixed prefix and drops everything before it.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ProtocolVersion is the version this agent speaks (HELLO and HELLO_ACK carry it). Version 2
// added the HELLO's resume field: a host may ask to go on with the epoch its earlier HELLO started
// (a machine that was saved and restored exactly, as sleep and wake do), sessions and all. Version
// 3 added the network relay (netframe.go).
const ProtocolVersion = 3

const (
	headerLen      = 9 // u32 length + u8 type + u32 session
	MaxPayload     = 64 * 1024
	maxFrameLength = 5 + MaxPayload // the value of the length field
	helloMagic     = "SPRITELY"
	nonceLen       = 16
	// helloPayloadV1: magic, nonce, version (a version-1 host; answered, then refused)
	helloPayloadV1 = len(helloMagic) + nonceLen + 2
	// helloPayload: magic, nonce, version, the nonce of the epoch to resume (zeros: a new one)
	helloPayload = helloPayloadV1 + nonceLen
)

// Frame types. H = host to agent, A = agent to host.
const (
	tHello    = 0x01 // H: magic, nonce, u16 version, resume nonce (v2)
	tHelloAck = 0x02 // A: nonce, u16 version, JSON info
	tPing     = 0x03 // H: 8-byte token
	tPong     = 0x04 // A: the same token
	tAnnounce = 0x05 // A: JSON; this agent (re)started and waits for a HELLO
	tFault    = 0x06 // either: JSON {message}; the sender saw a malformed stream and resyncs
	tExec     = 0x10 // H: JSON exec request
	tPty      = 0x11 // H: JSON pty request
	tOpened   = 0x12 // A: JSON {pid, stdinWindow}
	tData     = 0x13 // both: u8 stream + bytes
	tEOF      = 0x14 // both: u8 stream
	tWindow   = 0x15 // both: u8 stream + u32 bytes of credit
	tSignal   = 0x16 // H: signal name, ASCII ("TERM")
	tResize   = 0x17 // H: u16 cols + u16 rows
	tClose    = 0x18 // H: empty; kill the session's process group
	tExit     = 0x19 // A: JSON {code, signal, timedOut}; last frame of a session
	tError    = 0x1a // A: JSON {code, message}; the request failed, the session does not exist
	tIdentity = 0x20 // H: JSON identity
	tResult   = 0x21 // A: JSON result of a request (identity)
	// 0x30-0x3f: the network relay (netframe.go); a version-1 peer treats them as malformed.
)

// Stream numbers inside DATA, EOF and WINDOW.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
)

// What every HELLO frame has after its length: type, session 0 and the magic. The length before
// it must be one a HELLO can have (version 1 or 2).
var helloMark = append([]byte{tHello, 0, 0, 0, 0}, helloMagic...)

// helloPrefixLen: the length field and the mark.
const helloPrefixLen = 4 + 5 + len(helloMagic)

// findHello returns the offset of the first HELLO in b (length field included), or -1.
func findHello(b []byte) int {
	for from := 4; from <= len(b); {
		i := bytes.Index(b[from:], helloMark)
		if i < 0 {
			return -1
		}
		at := from + i - 4
		if n := binary.BigEndian.Uint32(b[at:]); n == uint32(5+helloPayload) || n == uint32(5+helloPayloadV1) {
			return at
		}
		from += i + 1
	}
	return -1
}

type frame struct {
	typ     byte
	session uint32
	payload []byte
}

// encodeFrame returns the wire bytes of one frame.
func encodeFrame(typ byte, session uint32, payload []byte) []byte {
	if len(payload) > MaxPayload {
		panic(fmt.Sprintf("frame payload of %d bytes exceeds the maximum of %d", len(payload), MaxPayload))
	}
	b := make([]byte, headerLen+len(payload))
	binary.BigEndian.PutUint32(b, uint32(5+len(payload)))
	b[4] = typ
	binary.BigEndian.PutUint32(b[5:], session)
	copy(b[headerLen:], payload)
	return b
}

var errMalformed = errors.New("malformed frame")

// frameReader turns bytes from the host into frames. It starts hunting (nothing but a HELLO is
// accepted, everything before one is dropped) and goes back to hunting whenever the caller says
// the stream broke. Buffered bytes never exceed one frame plus one read.
type frameReader struct {
	buf     []byte
	hunting bool
	dropped int // bytes dropped while hunting since the last HELLO
}

func newFrameReader() *frameReader {
	return &frameReader{hunting: true}
}

// hunt drops everything buffered and waits for the next HELLO.
func (r *frameReader) hunt() {
	r.buf = r.buf[:0]
	r.hunting = true
}

// feed appends bytes and calls onFrame for every complete frame. A header that cannot be a
// frame (length out of range) makes it return errMalformed after switching to hunting; the
// handler may do the same by returning an error, which feed passes on after hunting.
func (r *frameReader) feed(data []byte, onFrame func(frame) error) error {
	r.buf = append(r.buf, data...)
	off := 0
	defer func() {
		// keep only what is not consumed (at most one partial frame or a hunting tail); nothing
		// moves while a frame is still being assembled
		if off > 0 {
			n := copy(r.buf, r.buf[off:])
			r.buf = r.buf[:n]
		}
	}()
	for {
		if r.hunting {
			i := findHello(r.buf[off:])
			if i < 0 {
				keep := helloPrefixLen - 1
				if rest := len(r.buf) - off; rest > keep {
					r.dropped += rest - keep
					off = len(r.buf) - keep
				}
				return nil
			}
			r.dropped += i
			off += i
			r.hunting = false
		}
		rest := r.buf[off:]
		if len(rest) < headerLen {
			return nil
		}
		length := binary.BigEndian.Uint32(rest)
		if length < 5 || length > maxFrameLength {
			off = len(r.buf)
			r.hunting = true
			return fmt.Errorf("%w: length %d out of range", errMalformed, length)
		}
		total := 4 + int(length)
		if len(rest) < total {
			return nil
		}
		f := frame{typ: rest[4], session: binary.BigEndian.Uint32(rest[5:]), payload: rest[headerLen:total]}
		off += total
		if err := onFrame(f); err != nil {
			off = len(r.buf)
			r.hunting = true
			return err
		}
	}
}
