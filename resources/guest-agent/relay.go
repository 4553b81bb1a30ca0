// Transparent TCP: every outbound connection of the guest arrives here (the image's nftables
// rules redirect it), is given to the host with its original destination (TCP_CONNECT), and —
// when the host has decided and connected — its bytes flow both ways within each side's window,
// half-closes and resets included. A refused connection is reset at once, with one line in the
// agent's log saying what the host said (journalctl -u spritely-agent).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

const (
	// relayWindow: bytes the host may send ahead per connection (what this side buffers at most):
	// large, because a download's pace is this window over a round trip through an emulated
	// guest (256 KiB held one to ~19 MiB/s under TCG).
	relayWindow = 2 * 1024 * 1024
	// earlyWindow: bytes of the guest's this side sends before the host's answer (the host
	// holds them until connected): a client's first request travels with the connect instead of
	// a round trip later. TCP_CONNECTED grants more on top.
	earlyWindow = 64 * 1024
	// maxRelayConns bounds connections open or opening at once (the host has its own, lower cap
	// per sprite and refuses beyond it with a reason; this one only bounds the agent's memory).
	maxRelayConns = 512
	// relayConnectTimeout: how long a connection waits for the host's answer (the host gives up
	// connecting after 15 s and answers).
	relayConnectTimeout = 30 * time.Second
	// relayChunk: the most one DATA frame carries.
	relayChunk = MaxPayload
	// firstAgentID: agent session ids have the top bit set.
	firstAgentID = hostSessionBit | 1
)

type relay struct {
	n           *network
	fallbackDst netip.AddrPort // tests only (netConfig.testOriginalDst)

	mu      sync.Mutex
	conns   map[uint32]*relayConn
	idEpoch uint64 // the epoch nextID counts in
	nextID  uint32
}

type relayConn struct {
	r     *relay
	id    uint32
	epoch uint64
	quit  chan struct{} // the epoch's network ended
	c     *net.TCPConn
	dst   netip.AddrPort

	answer chan hostAnswer // the host's answer to TCP_CONNECT (buffered, one)
	out    *credit         // what the host still takes from us
	in     *inputQueue     // what the host sent, waiting to be written to the guest's socket
	inLeft *credit         // what the host may still send us

	// under r.mu
	connected bool
	gotEOF    bool // the host sent TCP_EOF
	sentEOF   bool // this side sent TCP_EOF
	wroteEOF  bool // the host's EOF reached the guest's socket (CloseWrite)

	done     chan struct{}
	doneOnce sync.Once
}

type hostAnswer struct {
	window uint32
	// reason and message of a TCP_CLOSE before TCP_CONNECTED
	closed  bool
	reason  byte
	message string
}

func newRelay(n *network) *relay {
	return &relay{n: n, conns: map[uint32]*relayConn{}, nextID: firstAgentID}
}

func (r *relay) serve(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			r.n.a.cfg.logf("network: the TCP relay stopped: %v", err)
			return
		}
		go r.carry(c)
	}
}

// destination: where the guest meant to connect (the address before the redirect).
func (r *relay) destination(c *net.TCPConn) (netip.AddrPort, error) {
	dst, err := originalDst(c)
	if err != nil && r.fallbackDst.IsValid() {
		return r.fallbackDst, nil
	}
	return dst, err
}

// carry serves one guest connection from its TCP_CONNECT to its end.
func (r *relay) carry(c *net.TCPConn) {
	dst, err := r.destination(c)
	if err != nil {
		r.n.refusedLog.printf("network: a connection to the relay port without a redirected destination (%v): reset", err)
		resetConn(c)
		return
	}
	rc, why := r.open(c, dst)
	if rc == nil {
		r.n.refusedLog.printf("network: %s refused in the guest: %s", dst, why)
		resetConn(c)
		return
	}
	if !rc.send(tTcpConnect, tcpConnectPayload(relayWindow, dst)) {
		rc.abort(false)
		return
	}
	// the guest's first bytes go out at once, within the early window
	go rc.toHost()
	timer := time.NewTimer(relayConnectTimeout)
	defer timer.Stop()
	var ans hostAnswer
	select {
	case ans = <-rc.answer:
	case <-timer.C:
		r.n.refusedLog.printf("network: %s: no answer from the host in %s", dst, relayConnectTimeout)
		rc.abort(true)
		return
	case <-rc.done:
		return
	}
	if ans.closed {
		r.n.refusedLog.printf("network: %s %s: %s", dst, closeReasonName(ans.reason), ans.message)
		rc.abort(false)
		return
	}
	rc.out.grant(int(ans.window))
	rc.toGuest()
}

// open registers a new connection of the current epoch, or says why it cannot be carried.
func (r *relay) open(c *net.TCPConn, dst netip.AddrPort) (*relayConn, string) {
	epoch, quit, ready := r.n.current()
	if !ready {
		return nil, "no host is connected to the agent"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.conns) >= maxRelayConns {
		return nil, fmt.Sprintf("the agent already carries %d connections", maxRelayConns)
	}
	if r.idEpoch != epoch {
		r.idEpoch, r.nextID = epoch, firstAgentID
	}
	if r.nextID == 0 {
		return nil, "connection ids of this host connection are used up"
	}
	rc := &relayConn{
		r: r, id: r.nextID, epoch: epoch, quit: quit, c: c, dst: dst,
		answer: make(chan hostAnswer, 1), out: newCredit(earlyWindow), in: newInputQueue(), inLeft: newCredit(relayWindow),
		done: make(chan struct{}),
	}
	r.nextID++ // wraps to 0 after 2^31-1 connections: then used up (checked above)
	r.conns[rc.id] = rc
	return rc, ""
}

// handle takes a host frame for a relayed connection.
func (r *relay) handle(f frame) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
	}
	if f.session&hostSessionBit == 0 {
		return bad("relay frame 0x%02x for session %d, which is not the agent's", f.typ, f.session)
	}
	r.mu.Lock()
	rc := r.conns[f.session]
	ended := rc == nil && r.idEpoch == r.n.a.epoch.Load() && f.session < r.nextID
	if rc == nil {
		r.mu.Unlock()
		if ended {
			return nil // it crossed the connection's end on the wire
		}
		return bad("relay frame 0x%02x for session %d, which the agent never opened", f.typ, f.session)
	}
	switch f.typ {
	case tTcpConnected:
		if rc.connected || len(f.payload) != 4 {
			r.mu.Unlock()
			return bad("TCP_CONNECTED not expected now, or not 4 bytes")
		}
		w := binary.BigEndian.Uint32(f.payload)
		if w == 0 || w > maxCredit {
			r.mu.Unlock()
			return bad("a window of %d bytes", w)
		}
		rc.connected = true
		r.mu.Unlock()
		select {
		case rc.answer <- hostAnswer{window: w}:
		default: // a TCP_CLOSE came first; carry is resetting the connection
		}
	case tTcpData:
		if !rc.connected || rc.gotEOF || len(f.payload) == 0 {
			r.mu.Unlock()
			return bad("TCP_DATA not expected now, or empty")
		}
		r.mu.Unlock()
		if !rc.inLeft.spend(len(f.payload)) {
			return bad("session %d: %d bytes beyond the window", f.session, len(f.payload))
		}
		rc.in.push(append([]byte(nil), f.payload...))
	case tTcpEOF:
		if !rc.connected || rc.gotEOF || len(f.payload) != 0 {
			r.mu.Unlock()
			return bad("TCP_EOF not expected now")
		}
		rc.gotEOF = true
		r.mu.Unlock()
		rc.in.close()
	case tTcpWindow:
		if !rc.connected || len(f.payload) != 4 {
			r.mu.Unlock()
			return bad("TCP_WINDOW not expected now, or not 4 bytes")
		}
		r.mu.Unlock()
		if n := binary.BigEndian.Uint32(f.payload); n == 0 || !rc.out.grant(int(n)) {
			return bad("a grant of %d bytes", n)
		}
	case tTcpClose:
		if len(f.payload) < 1 || len(f.payload) > 1+maxCloseMessage {
			r.mu.Unlock()
			return bad("TCP_CLOSE wants a reason and at most %d bytes of message", maxCloseMessage)
		}
		connected := rc.connected
		r.mu.Unlock()
		if !connected {
			select {
			case rc.answer <- hostAnswer{closed: true, reason: f.payload[0], message: printableText(f.payload[1:])}:
			default:
			}
		} else {
			rc.abort(false)
		}
	}
	return nil
}

// toHost: the guest's bytes to the host, within the host's window; then EOF or a reset.
func (rc *relayConn) toHost() {
	buf := make([]byte, relayChunk)
	for {
		n, ok := rc.out.take(len(buf), rc.done)
		if !ok {
			return
		}
		k, err := rc.c.Read(buf[:n])
		rc.out.giveBack(n - k)
		if k > 0 && !rc.send(tTcpData, buf[:k]) {
			return
		}
		if err == io.EOF {
			if rc.send(tTcpEOF, nil) {
				rc.halfEnded(&rc.sentEOF)
			}
			return
		}
		if err != nil {
			rc.abort(true) // reset by the guest's side, or closed under us
			return
		}
	}
}

// toGuest: the host's bytes to the guest's socket, granting the host more as they are written.
func (rc *relayConn) toGuest() {
	for {
		chunk, eof, ok := rc.in.pop(rc.done)
		if !ok {
			return
		}
		if chunk != nil {
			if _, err := rc.c.Write(chunk); err != nil {
				rc.abort(true)
				return
			}
			rc.inLeft.grant(len(chunk))
			if !rc.send(tTcpWindow, binary.BigEndian.AppendUint32(nil, uint32(len(chunk)))) {
				return
			}
			continue
		}
		if eof {
			rc.c.CloseWrite()
			rc.halfEnded(&rc.wroteEOF)
			return
		}
	}
}

// send queues one frame of this connection, giving up when it or its epoch's network ends.
func (rc *relayConn) send(typ byte, payload []byte) bool {
	return rc.r.n.send(rc.epoch, rc.quit, rc.done, encodeFrame(typ, rc.id, payload))
}

// halfEnded records that one direction ended cleanly (sentEOF or wroteEOF); the second finishes.
func (rc *relayConn) halfEnded(flag *bool) {
	rc.r.mu.Lock()
	*flag = true
	over := rc.sentEOF && rc.wroteEOF
	rc.r.mu.Unlock()
	if over {
		rc.finish()
	}
}

// finish: both directions ended cleanly.
func (rc *relayConn) finish() {
	rc.forget()
	rc.c.Close()
}

// abort resets the guest's connection; tell says whether the host must hear of it (TCP_CLOSE).
func (rc *relayConn) abort(tell bool) {
	if !rc.forget() {
		return
	}
	resetConn(rc.c)
	if tell {
		rc.r.n.send(rc.epoch, rc.quit, nil, encodeFrame(tTcpClose, rc.id, []byte{closeReset}))
	}
}

// forget removes the connection and stops its pumps; false if it was already gone.
func (rc *relayConn) forget() bool {
	rc.r.mu.Lock()
	mine := rc.r.conns[rc.id] == rc
	if mine {
		delete(rc.r.conns, rc.id)
	}
	rc.r.mu.Unlock()
	first := false
	rc.doneOnce.Do(func() {
		first = true
		close(rc.done)
	})
	return mine && first
}

// abortAll resets every connection (the epoch ended); returns how many there were.
func (r *relay) abortAll() int {
	r.mu.Lock()
	conns := r.conns
	r.conns = map[uint32]*relayConn{}
	r.mu.Unlock()
	for _, rc := range conns {
		rc.doneOnce.Do(func() { close(rc.done) })
		resetConn(rc.c)
	}
	return len(conns)
}

// resetConn closes with a RST (SO_LINGER 0): the guest's program sees "connection reset" at once
// instead of an orderly end it could mistake for a complete answer.
func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// printableText: host text for the log, without control characters.
func printableText(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
