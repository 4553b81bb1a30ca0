// The agent's half of the channel: one reader that turns host frames into actions, one writer
// that sends what sessions produce, and the epoch that ties both to one host connection. A HELLO
// (nonce echoed in the ACK) starts a new epoch: every session of the previous one is killed and
// everything still queued for it is dropped, so a restored machine or a restarted daemon never
// sees frames meant for somebody else — unless the HELLO asks to resume the current epoch by the
// nonce that started it (the host saved this machine and brought it back exactly: sleep and
// wake); then the sessions go on and the ACK lists them.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxSessions bounds the sessions of one epoch (each holds a process, pipes and windows).
	maxSessions = 1024
	// outQueue bounds the frames waiting for the writer; producers block beyond it.
	outQueue = 64
	// writeBatch is how many bytes of queued frames the writer joins into one write (the Linux
	// driver takes at most 32 KiB per write on a virtio port; writer.go).
	writeBatch = 32 * 1024
	// hostSessionBit: session ids with this bit clear are opened by the host, the others are
	// reserved for sessions the agent opens (the network relay).
	hostSessionBit = 1 << 31
)

type outFrame struct {
	epoch uint64
	b     []byte
}

type config struct {
	// hostGoneGrace: how long the host may be absent before the epoch's sessions are killed
	// (a read of 0 can be a connect notification that has not been processed yet).
	hostGoneGrace time.Duration
	// root prefixes every file path identity writes; non-empty in tests, where the live actions
	// (hostname, clock, RNG, sshd, resize2fs) are skipped.
	root string
	logf func(format string, args ...any)
	// net: what the agent serves for the guest's network (network.go).
	net netConfig
}

type agent struct {
	cfg   config
	tr    transport
	out   chan outFrame
	epoch atomic.Uint64

	mu          sync.Mutex
	ready       bool // a HELLO of our version arrived in this epoch
	sessions    map[uint32]*session
	faultLogged bool
	identityMu  sync.Mutex
	resync      atomic.Bool // the reader must hunt for a HELLO before the next frame
	helloGen    uint64      // counts HELLOs, so a late absence timer does not end a new epoch
	net         *network    // the guest's DNS and TCP, carried to the host
	epochNonce  []byte      // the nonce of the HELLO that started this epoch (what a resume names)
}

func newAgent(tr transport, cfg config) *agent {
	if cfg.logf == nil {
		cfg.logf = func(string, ...any) {}
	}
	if cfg.hostGoneGrace == 0 {
		cfg.hostGoneGrace = 2 * time.Second
	}
	a := &agent{cfg: cfg, tr: tr, out: make(chan outFrame, outQueue), sessions: map[uint32]*session{}}
	a.net = newNetwork(a)
	a.net.start(cfg.net) // listeners are up before the first HELLO; until then they refuse
	return a
}

// run announces the agent and serves until the transport fails for good.
func (a *agent) run() error {
	werr := make(chan error, 1)
	go func() { werr <- a.writeLoop() }()
	a.enqueue(a.epoch.Load(), encodeFrame(tAnnounce, 0, a.infoJSON(nil)))
	rerr := make(chan error, 1)
	go func() { rerr <- a.readLoop() }()
	select {
	case err := <-werr:
		return fmt.Errorf("writing to the host: %w", err)
	case err := <-rerr:
		return fmt.Errorf("reading from the host: %w", err)
	}
}

// infoJSON describes this agent; resumed (for a HELLO_ACK that resumed an epoch) lists the
// sessions that go on.
func (a *agent) infoJSON(resumed []uint32) []byte {
	info := map[string]any{
		"agent":       "spritely-agent",
		"protocol":    ProtocolVersion,
		"pid":         os.Getpid(),
		"maxSessions": maxSessions,
		"maxPayload":  MaxPayload,
	}
	if resumed != nil {
		info["resumed"] = resumed
	}
	b, _ := json.Marshal(info)
	return b
}

// enqueue hands a frame to the writer, waiting while the queue is full.
func (a *agent) enqueue(epoch uint64, b []byte) {
	a.out <- outFrame{epoch, b}
}

// send is enqueue for a session: it gives up when the session ends.
func (a *agent) send(epoch uint64, b []byte, done <-chan struct{}) bool {
	select {
	case a.out <- outFrame{epoch, b}:
		return true
	case <-done:
		return false
	}
}

func (a *agent) writeLoop() error {
	w := newPortWriter(a.tr)
	for f := range a.out {
		if f.epoch == a.epoch.Load() {
			if err := w.add(f.b); err != nil {
				return err
			}
		}
		recycleFrame(f.b)
		if len(a.out) == 0 {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *agent) readLoop() error {
	fr := newFrameReader()
	buf := make([]byte, 64*1024)
	for {
		n, err := a.tr.Read(buf)
		if errors.Is(err, errHostGone) {
			a.hostAbsent()
			continue
		}
		if err != nil {
			return err
		}
		// checked after the read: bytes that arrived while the host was judged gone belong to
		// whoever comes next, who starts with a HELLO
		if a.resync.CompareAndSwap(true, false) {
			fr.hunt()
		}
		if err := fr.feed(buf[:n], a.handle); err != nil {
			var v errVersion
			if errors.As(err, &v) {
				continue // answered with our version; the host will refuse us and reconnect
			}
			a.fault(err)
		}
	}
}

// hostAbsent: the host side seems to have gone. Nothing is dropped yet (see transport.go: the
// driver can say so while a host is connecting); if it is still gone after the grace period,
// the epoch ends: its sessions are killed (their client is gone) and the reader resyncs.
func (a *agent) hostAbsent() {
	a.mu.Lock()
	gen := a.helloGen
	a.mu.Unlock()
	time.AfterFunc(a.cfg.hostGoneGrace, func() {
		if a.tr.hostPresent() {
			return
		}
		a.mu.Lock()
		if gen != a.helloGen || (!a.ready && len(a.sessions) == 0) {
			a.mu.Unlock()
			return // a HELLO came meanwhile (that host is present), or there is nothing to end
		}
		sessions := a.takeSessionsLocked()
		a.resync.Store(true)
		a.mu.Unlock()
		a.abandonAll(sessions, "the host has been gone for "+a.cfg.hostGoneGrace.String())
	})
}

type errVersion struct{ got uint16 }

func (e errVersion) Error() string { return fmt.Sprintf("the host speaks protocol version %d", e.got) }

// fault: the host sent something malformed. Tell it (once per epoch in the log), drop the
// epoch's sessions and wait for a new HELLO.
func (a *agent) fault(err error) {
	a.mu.Lock()
	logIt := !a.faultLogged
	a.faultLogged = true
	a.mu.Unlock()
	if logIt {
		a.cfg.logf("malformed input from the host, waiting for a new HELLO: %v", err)
	}
	a.endEpoch("malformed input from the host")
	msg, _ := json.Marshal(map[string]string{"message": err.Error()})
	a.enqueue(a.epoch.Load(), encodeFrame(tFault, 0, msg))
}

// endEpoch kills every session, drops what is queued for them and waits for a new HELLO.
func (a *agent) endEpoch(why string) {
	a.mu.Lock()
	sessions := a.takeSessionsLocked()
	a.mu.Unlock()
	a.abandonAll(sessions, why)
}

// takeSessionsLocked starts a new epoch (not ready) and returns the old epoch's sessions.
func (a *agent) takeSessionsLocked() map[uint32]*session {
	sessions := a.sessions
	a.sessions = map[uint32]*session{}
	a.ready = false
	a.epoch.Add(1)
	return sessions
}

func (a *agent) abandonAll(sessions map[uint32]*session, why string) {
	a.net.reset(why)
	if len(sessions) > 0 {
		a.cfg.logf("%s: ending %d session(s)", why, len(sessions))
	}
	for _, s := range sessions {
		s.abandon()
	}
}

func (a *agent) handle(f frame) error {
	if f.typ == tHello {
		return a.onHello(f)
	}
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		return fmt.Errorf("%w: type 0x%02x before HELLO", errMalformed, f.typ)
	}
	switch f.typ {
	case tPing:
		if f.session != 0 || len(f.payload) != 8 {
			return fmt.Errorf("%w: PING wants session 0 and 8 bytes", errMalformed)
		}
		a.enqueue(a.epoch.Load(), encodeFrame(tPong, 0, f.payload))
		return nil
	case tExec, tPty:
		if f.session == 0 || f.session&hostSessionBit != 0 {
			return fmt.Errorf("%w: session id %d is not the host's to open", errMalformed, f.session)
		}
		a.mu.Lock()
		_, busy := a.sessions[f.session]
		a.mu.Unlock()
		if busy {
			return fmt.Errorf("%w: session %d is already open", errMalformed, f.session)
		}
		a.open(f)
		return nil
	case tIdentity:
		if f.session == 0 || f.session&hostSessionBit != 0 {
			return fmt.Errorf("%w: request id %d is not the host's", errMalformed, f.session)
		}
		payload := append([]byte(nil), f.payload...)
		epoch := a.epoch.Load()
		go a.identity(epoch, f.session, payload)
		return nil
	case tData, tEOF, tWindow, tSignal, tResize, tClose:
		return a.toSession(f)
	}
	if isNetFrame(f.typ) {
		return a.net.handle(f)
	}
	return fmt.Errorf("%w: unknown frame type 0x%02x", errMalformed, f.typ)
}

func (a *agent) onHello(f frame) error {
	if f.session != 0 || (len(f.payload) != helloPayload && len(f.payload) != helloPayloadV1) || string(f.payload[:len(helloMagic)]) != helloMagic {
		return fmt.Errorf("%w: bad HELLO", errMalformed)
	}
	nonce := append([]byte(nil), f.payload[len(helloMagic):len(helloMagic)+nonceLen]...)
	version := binary.BigEndian.Uint16(f.payload[len(helloMagic)+nonceLen:])
	if len(f.payload) != helloPayload && version == ProtocolVersion {
		return fmt.Errorf("%w: a version %d HELLO has %d bytes", errMalformed, version, helloPayload)
	}
	var resume []byte
	if len(f.payload) == helloPayload {
		resume = f.payload[helloPayloadV1:]
	}
	ack := make([]byte, 0, nonceLen+2+128)
	ack = append(ack, nonce...)
	ack = binary.BigEndian.AppendUint16(ack, ProtocolVersion)
	a.mu.Lock()
	resumed := version == ProtocolVersion && a.ready && a.epochNonce != nil && !bytes.Equal(resume, make([]byte, nonceLen)) && bytes.Equal(resume, a.epochNonce)
	var sessions map[uint32]*session
	var going []uint32
	if resumed {
		// the same host, after this machine was saved and restored exactly: its sessions go on,
		// and the ACK comes after whatever they queued before it (the stream is one stream)
		going = make([]uint32, 0, len(a.sessions))
		for id := range a.sessions {
			going = append(going, id)
		}
		sort.Slice(going, func(i, j int) bool { return going[i] < going[j] })
	} else {
		sessions = a.takeSessionsLocked()
		a.ready = version == ProtocolVersion
		a.epochNonce = nonce
	}
	a.faultLogged = false
	a.helloGen++
	a.resync.Store(false)
	epoch := a.epoch.Load()
	a.mu.Unlock()
	a.abandonAll(sessions, "new HELLO from the host")
	ack = append(ack, a.infoJSON(going)...)
	a.enqueue(epoch, encodeFrame(tHelloAck, 0, ack))
	if version != ProtocolVersion {
		a.cfg.logf("the host speaks protocol version %d, this agent %d: refusing", version, ProtocolVersion)
		return errVersion{version}
	}
	return nil
}

// toSession routes a frame to its session. Frames for a session that is gone are dropped: they
// crossed its EXIT on the wire.
func (a *agent) toSession(f frame) error {
	a.mu.Lock()
	s := a.sessions[f.session]
	a.mu.Unlock()
	switch f.typ {
	case tData:
		if len(f.payload) < 1 || f.payload[0] != streamStdin {
			return fmt.Errorf("%w: DATA from the host must be for stdin", errMalformed)
		}
		if s == nil {
			return nil
		}
		if !s.stdinCredit.spend(len(f.payload) - 1) {
			return fmt.Errorf("%w: session %d: stdin beyond the granted window", errMalformed, f.session)
		}
		s.stdin.push(stdinChunk(f.payload[1:]))
	case tEOF:
		if len(f.payload) != 1 || f.payload[0] != streamStdin {
			return fmt.Errorf("%w: EOF from the host must be for stdin", errMalformed)
		}
		if s != nil {
			s.stdin.close()
		}
	case tWindow:
		if len(f.payload) != 5 {
			return fmt.Errorf("%w: WINDOW wants 5 bytes", errMalformed)
		}
		if s == nil {
			return nil
		}
		st := s.outStream(f.payload[0])
		if st == nil {
			return fmt.Errorf("%w: WINDOW for stream %d", errMalformed, f.payload[0])
		}
		if !st.credit.grant(int(binary.BigEndian.Uint32(f.payload[1:]))) {
			return fmt.Errorf("%w: window over %d bytes", errMalformed, maxCredit)
		}
	case tSignal:
		sig, ok := signalByName(string(f.payload))
		if !ok {
			return fmt.Errorf("%w: unknown signal %q", errMalformed, f.payload)
		}
		if s != nil {
			s.signal(sig)
		}
	case tResize:
		if len(f.payload) != 4 {
			return fmt.Errorf("%w: RESIZE wants 4 bytes", errMalformed)
		}
		if s != nil {
			s.resize(binary.BigEndian.Uint16(f.payload), binary.BigEndian.Uint16(f.payload[2:]))
		}
	case tClose:
		if len(f.payload) != 0 {
			return fmt.Errorf("%w: CLOSE has no payload", errMalformed)
		}
		if s != nil {
			s.hostClosed()
		}
	}
	return nil
}

// open starts an exec or pty session; a request that cannot start is answered with ERROR.
func (a *agent) open(f frame) {
	epoch := a.epoch.Load()
	fail := func(code, msg string) {
		b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
		a.enqueue(epoch, encodeFrame(tError, f.session, b))
	}
	a.mu.Lock()
	n := len(a.sessions)
	a.mu.Unlock()
	if n >= maxSessions {
		fail("too_many_sessions", fmt.Sprintf("this agent runs at most %d sessions at once", maxSessions))
		return
	}
	req, err := parseOpenRequest(f.payload, f.typ == tPty)
	if err != nil {
		fail("invalid_request", err.Error())
		return
	}
	s := newSession(a, f.session, epoch, req)
	a.mu.Lock()
	if a.epoch.Load() != epoch {
		a.mu.Unlock()
		return
	}
	a.sessions[f.session] = s
	a.mu.Unlock()
	s.start()
}

// forget removes a finished session (if it still belongs to the current table).
func (a *agent) forget(s *session) {
	a.mu.Lock()
	if a.sessions[s.id] == s {
		delete(a.sessions, s.id)
	}
	a.mu.Unlock()
}

func (a *agent) identity(epoch uint64, id uint32, payload []byte) {
	a.identityMu.Lock()
	res := applyIdentityJSON(payload, a.cfg.root)
	a.identityMu.Unlock()
	b, _ := json.Marshal(res)
	a.enqueue(epoch, encodeFrame(tResult, id, b))
}
