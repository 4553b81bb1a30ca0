package main

// The daemon's side (vm/net/netstack-link.ts). Each guest TCP connection is one connection to
// the daemon's socket that starts with `TCP a.b.c.d port\n`; the daemon answers `OK\n` (then the
// bytes flow) or `NO kind message\n`. DNS queries and refused datagrams go over one control
// stream (`CTL\n`, then frames: type u8, tag u32, length u16, payload), reconnected when it breaks.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

const (
	frameDNSQuery   = 1
	frameDNSAnswer  = 2
	frameUDPRefused = 3
	frameHeader     = 7
	// decideTimeout bounds how long a guest connection waits for the daemon's decision (the
	// daemon resolves and connects within it; the guest's SYN is answered only then).
	decideTimeout = 30 * time.Second
	// maxReplyLine bounds the daemon's answer line.
	maxReplyLine = 1024
)

type daemon struct {
	path string

	mu   sync.Mutex
	ctl  net.Conn
	dead bool
	// onAnswer gets each DNS answer the daemon sends back.
	onAnswer func(tag uint32, answer []byte)
}

// refusal is the daemon's "no" to a connection.
type refusal struct{ kind, message string }

func (r *refusal) Error() string { return r.kind + ": " + r.message }

// openTCP asks the daemon for a connection to ip:port. On "OK" it returns the stream (and a
// reader holding any bytes already read past the answer); on "NO" a *refusal.
func (d *daemon) openTCP(ip net.IP, port uint16) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("unix", d.path, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(decideTimeout))
	if _, err := fmt.Fprintf(c, "TCP %s %d\n", ip.To4().String(), port); err != nil {
		c.Close()
		return nil, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	line, err := readLine(r, maxReplyLine)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	if line == "OK" {
		return c, r, nil
	}
	c.Close()
	return nil, nil, parseRefusal(line)
}

// parseRefusal reads `NO kind message`; anything else is a protocol error.
func parseRefusal(line string) error {
	if !strings.HasPrefix(line, "NO ") {
		return fmt.Errorf("unexpected answer from the daemon: %q", line)
	}
	kind, msg, _ := strings.Cut(line[3:], " ")
	return &refusal{kind: kind, message: msg}
}

// readLine reads one '\n'-terminated line of at most max bytes (without the newline).
func readLine(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > max {
			return "", errors.New("the daemon's answer is too long")
		}
		if err == nil {
			return string(b[:len(b)-1]), nil
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
}

// send writes one control frame, connecting (again) when needed. A frame that cannot be sent
// is dropped: the guest's resolver asks again.
func (d *daemon) send(typ byte, tag uint32, payload []byte) error {
	if len(payload) > 0xffff {
		return errors.New("payload too large")
	}
	buf := make([]byte, frameHeader+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], tag)
	binary.BigEndian.PutUint16(buf[5:7], uint16(len(payload)))
	copy(buf[frameHeader:], payload)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return errors.New("closed")
	}
	for attempt := 0; attempt < 2; attempt++ {
		if d.ctl == nil {
			c, err := net.DialTimeout("unix", d.path, 5*time.Second)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(c, "CTL\n"); err != nil {
				c.Close()
				return err
			}
			d.ctl = c
			go d.readAnswers(c)
		}
		_ = d.ctl.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := d.ctl.Write(buf); err == nil {
			return nil
		}
		d.ctl.Close()
		d.ctl = nil
	}
	return errors.New("the daemon's control stream is broken")
}

// readAnswers reads the daemon's frames until the stream ends; a bad frame ends it.
func (d *daemon) readAnswers(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	defer func() {
		c.Close()
		d.mu.Lock()
		if d.ctl == c {
			d.ctl = nil
		}
		d.mu.Unlock()
	}()
	for {
		typ, tag, payload, err := readControlFrame(r)
		if err != nil || typ != frameDNSAnswer {
			return
		}
		if d.onAnswer != nil {
			d.onAnswer(tag, payload)
		}
	}
}

func readControlFrame(r *bufio.Reader) (byte, uint32, []byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	payload := make([]byte, binary.BigEndian.Uint16(hdr[5:7]))
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return hdr[0], binary.BigEndian.Uint32(hdr[1:5]), payload, nil
}

func (d *daemon) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	if d.ctl != nil {
		d.ctl.Close()
		d.ctl = nil
	}
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
