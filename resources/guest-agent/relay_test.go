package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startNetAgent: an agent whose relay and DNS listen on loopback; relayed connections are
// "going to" dst (the host has no redirect here).
func startNetAgent(t *testing.T, dst string) (*testHost, *agent, *logLines) {
	t.Helper()
	tr := &fakeTransport{in: make(chan []byte, 64), out: make(chan []byte, 4096)}
	logs := &logLines{}
	a := newAgent(tr, config{root: t.TempDir(), hostGoneGrace: 50 * time.Millisecond, logf: logs.printf,
		net: netConfig{tcpRelay: "127.0.0.1:0", dns: "127.0.0.1:0", testOriginalDst: dst}})
	go a.run()
	return &testHost{t: t, tr: tr}, a, logs
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) printf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logLines) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

// expectNet returns the next frame of type typ, skipping announcements and the agent's WINDOW
// grants (collected in windows).
func (h *testHost) expectNet(typ byte) frame {
	h.t.Helper()
	for {
		f, ok := h.next(5 * time.Second)
		if !ok {
			h.t.Fatalf("no frame 0x%02x", typ)
		}
		if f.typ == typ {
			return f
		}
		if f.typ == tAnnounce || f.typ == tTcpWindow {
			continue
		}
		h.t.Fatalf("got frame 0x%02x session %x (%q), want 0x%02x", f.typ, f.session, f.payload, typ)
	}
}

func (h *testHost) pingPong() {
	h.t.Helper()
	h.send(encodeFrame(tPing, 0, []byte("pingpong")))
	h.expectNet(tPong)
}

func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func dialRelay(t *testing.T, a *agent) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, a.net.relayAddr.(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRelayCarriesAConnectionBothWaysWithHalfCloses(t *testing.T) {
	h, a, _ := startNetAgent(t, "192.0.2.7:22")
	h.hello(1, ProtocolVersion)
	c := dialRelay(t, a)
	conn := h.expectNet(tTcpConnect)
	if conn.session != firstAgentID {
		t.Fatalf("session %x", conn.session)
	}
	if w := binary.BigEndian.Uint32(conn.payload); w != relayWindow {
		t.Fatalf("window %d", w)
	}
	dst, err := decodeDestination(conn.payload[4:])
	if err != nil || dst != netip.MustParseAddrPort("192.0.2.7:22") {
		t.Fatalf("destination %v %v", dst, err)
	}
	h.send(encodeFrame(tTcpConnected, conn.session, u32(1000)))
	c.Write([]byte("hello"))
	if d := h.expectNet(tTcpData); string(d.payload) != "hello" || d.session != conn.session {
		t.Fatalf("data %q", d.payload)
	}
	h.send(encodeFrame(tTcpData, conn.session, []byte("world")))
	buf := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "world" {
		t.Fatalf("read %q %v", buf, err)
	}
	// the agent gives the window back as it writes
	for {
		f, _ := h.next(5 * time.Second)
		if f.typ == tTcpWindow {
			if binary.BigEndian.Uint32(f.payload) != 5 {
				t.Fatalf("window %x", f.payload)
			}
			break
		}
	}
	c.CloseWrite()
	h.expectNet(tTcpEOF)
	h.send(encodeFrame(tTcpData, conn.session, []byte("after")))
	h.send(encodeFrame(tTcpEOF, conn.session, nil))
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "after" {
		t.Fatalf("rest %q %v", rest, err)
	}
	// over: a late frame for it crossed its end and is dropped, not a fault
	time.Sleep(50 * time.Millisecond)
	h.send(encodeFrame(tTcpWindow, conn.session, u32(10)))
	h.pingPong()
	// the next connection gets the next id
	dialRelay(t, a)
	if next := h.expectNet(tTcpConnect); next.session != firstAgentID+1 {
		t.Fatalf("next session %x", next.session)
	}
}

func TestRelaySendsNoMoreThanTheHostsWindow(t *testing.T) {
	h, a, _ := startNetAgent(t, "192.0.2.7:80")
	h.hello(1, ProtocolVersion)
	c := dialRelay(t, a)
	id := h.expectNet(tTcpConnect).session
	// before the host answers: the early window, no more
	go c.Write(append(bytes.Repeat([]byte("e"), earlyWindow), []byte("0123456789")...))
	got := 0
	for got < earlyWindow {
		d := h.expectNet(tTcpData)
		got += len(d.payload)
	}
	if got != earlyWindow {
		t.Fatalf("sent %d bytes before the answer", got)
	}
	if f, ok := h.next(200 * time.Millisecond); ok {
		t.Fatalf("sent 0x%02x %q beyond the early window", f.typ, f.payload)
	}
	h.send(encodeFrame(tTcpConnected, id, u32(4)))
	if d := h.expectNet(tTcpData); string(d.payload) != "0123" {
		t.Fatalf("first %q", d.payload)
	}
	if f, ok := h.next(200 * time.Millisecond); ok {
		t.Fatalf("sent 0x%02x %q beyond the window", f.typ, f.payload)
	}
	h.send(encodeFrame(tTcpWindow, id, u32(100)))
	if d := h.expectNet(tTcpData); string(d.payload) != "456789" {
		t.Fatalf("rest %q", d.payload)
	}
}

func TestRefusedConnectionIsResetAndLogged(t *testing.T) {
	h, a, logs := startNetAgent(t, "198.51.100.9:5432")
	h.hello(1, ProtocolVersion)
	c := dialRelay(t, a)
	id := h.expectNet(tTcpConnect).session
	h.send(encodeFrame(tTcpClose, id, append([]byte{closeRefused}, "spritely: 198.51.100.9:5432 refused: not in the allow list\x1b[31m"...)))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a refusal: %v", err)
	}
	if !logs.has("198.51.100.9:5432 refused: spritely: 198.51.100.9:5432 refused: not in the allow list?[31m") {
		t.Fatalf("log %q", logs.lines)
	}
}

func TestHostCloseResetsAndGuestResetCloses(t *testing.T) {
	h, a, _ := startNetAgent(t, "192.0.2.7:80")
	h.hello(1, ProtocolVersion)
	c := dialRelay(t, a)
	id := h.expectNet(tTcpConnect).session
	h.send(encodeFrame(tTcpConnected, id, u32(1000)))
	h.send(encodeFrame(tTcpClose, id, []byte{closeReset}))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the host's reset: %v", err)
	}

	c2 := dialRelay(t, a)
	id2 := h.expectNet(tTcpConnect).session
	h.send(encodeFrame(tTcpConnected, id2, u32(1000)))
	c2.SetLinger(0)
	c2.Close()
	if f := h.expectNet(tTcpClose); f.session != id2 || !bytes.Equal(f.payload, []byte{closeReset}) {
		t.Fatalf("close %x %q", f.session, f.payload)
	}
}

func TestNewHelloResetsRelayedConnectionsAndIdsStartAgain(t *testing.T) {
	h, a, _ := startNetAgent(t, "192.0.2.7:80")
	h.hello(1, ProtocolVersion)
	c := dialRelay(t, a)
	id := h.expectNet(tTcpConnect).session
	h.send(encodeFrame(tTcpConnected, id, u32(1000)))
	h.hello(2, ProtocolVersion)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a new epoch: %v", err)
	}
	dialRelay(t, a)
	if f := h.expectNet(tTcpConnect); f.session != firstAgentID {
		t.Fatalf("first id of the new epoch %x", f.session)
	}
}

func TestRelayBeforeAnyHelloRefusesAtOnce(t *testing.T) {
	_, a, logs := startNetAgent(t, "192.0.2.7:80")
	c, err := net.DialTCP("tcp", nil, a.net.relayAddr.(*net.TCPAddr))
	if err == nil { // the reset may come before or after the dial completes
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("with no host: %v", err)
	}
	if !logs.has("no host is connected") {
		t.Fatalf("log %q", logs.lines)
	}
}

func TestMalformedRelayFramesFault(t *testing.T) {
	cases := map[string]func(id uint32) []byte{
		"data before connected":    func(id uint32) []byte { return encodeFrame(tTcpData, id, []byte("x")) },
		"a session never opened":   func(id uint32) []byte { return encodeFrame(tTcpConnected, id+5, u32(10)) },
		"the host's id space":      func(id uint32) []byte { return encodeFrame(tTcpConnected, 7, u32(10)) },
		"a window of 0":            func(id uint32) []byte { return encodeFrame(tTcpConnected, id, u32(0)) },
		"a window too big":         func(id uint32) []byte { return encodeFrame(tTcpConnected, id, u32(maxCredit+1)) },
		"a short CONNECTED":        func(id uint32) []byte { return encodeFrame(tTcpConnected, id, []byte{1}) },
		"an empty CLOSE":           func(id uint32) []byte { return encodeFrame(tTcpClose, id, nil) },
		"a CLOSE message too long": func(id uint32) []byte { return encodeFrame(tTcpClose, id, make([]byte, 2+maxCloseMessage)) },
		"a CONNECT from the host":  func(id uint32) []byte { return encodeFrame(tTcpConnect, id, make([]byte, 10)) },
		"a query from the host":    func(id uint32) []byte { return encodeFrame(tDnsQuery, 0, make([]byte, 10)) },
		"a short DNS answer":       func(id uint32) []byte { return encodeFrame(tDnsAnswer, 0, []byte{1}) },
		"a DNS answer on a session": func(id uint32) []byte {
			return encodeFrame(tDnsAnswer, id, []byte{0, 1, 2})
		},
		"an unassigned type": func(id uint32) []byte { return encodeFrame(0x3f, 0, nil) },
	}
	for name, frameOf := range cases {
		t.Run(name, func(t *testing.T) {
			h, a, _ := startNetAgent(t, "192.0.2.7:80")
			h.hello(1, ProtocolVersion)
			c := dialRelay(t, a)
			id := h.expectNet(tTcpConnect).session
			h.send(frameOf(id))
			h.expectNet(tFault)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the epoch's connection survived a fault: %v", err)
			}
		})
	}
	t.Run("data beyond the window", func(t *testing.T) {
		h, a, _ := startNetAgent(t, "192.0.2.7:80")
		h.hello(1, ProtocolVersion)
		dialRelay(t, a)
		id := h.expectNet(tTcpConnect).session
		h.send(encodeFrame(tTcpConnected, id, u32(10)))
		for sent := 0; sent <= relayWindow; sent += MaxPayload {
			h.send(encodeFrame(tTcpData, id, make([]byte, MaxPayload)))
		}
		h.expectNet(tFault)
	})
	t.Run("data after EOF", func(t *testing.T) {
		h, a, _ := startNetAgent(t, "192.0.2.7:80")
		h.hello(1, ProtocolVersion)
		dialRelay(t, a)
		id := h.expectNet(tTcpConnect).session
		h.send(encodeFrame(tTcpConnected, id, u32(10)))
		h.send(encodeFrame(tTcpEOF, id, nil))
		h.send(encodeFrame(tTcpData, id, []byte("late")))
		h.expectNet(tFault)
	})
}

func TestDNSQueriesGoToTheHostAndAnswersBack(t *testing.T) {
	h, a, _ := startNetAgent(t, "")
	h.hello(1, ProtocolVersion)
	c, err := net.DialUDP("udp", nil, a.net.dnsAddr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("a query"))
	q := h.expectNet(tDnsQuery)
	if q.session != 0 || string(q.payload[2:]) != "a query" {
		t.Fatalf("query %x %q", q.session, q.payload)
	}
	handle := q.payload[:2]
	h.send(encodeFrame(tDnsAnswer, 0, []byte{0xff, 0xff, 'x'})) // nobody asked: dropped
	h.send(encodeFrame(tDnsAnswer, 0, append(append([]byte(nil), handle...), "the answer"...)))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "the answer" {
		t.Fatalf("answer %q %v", buf[:n], err)
	}
	// answered once only
	h.send(encodeFrame(tDnsAnswer, 0, append(append([]byte(nil), handle...), "twice"...)))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a second answer came through: %q", buf[:n])
	}
	h.pingPong()
}

func TestDNSPendingIsBounded(t *testing.T) {
	h, a, _ := startNetAgent(t, "")
	h.hello(1, ProtocolVersion)
	d := a.net.dns
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	epoch := a.epoch.Load()
	for i := 0; i < maxDNSPending; i++ {
		if _, ok := d.remember(to, epoch); !ok {
			t.Fatalf("refused at %d", i)
		}
	}
	if _, ok := d.remember(to, epoch); ok {
		t.Fatal("more than maxDNSPending queries wait")
	}
	// a new epoch's queries push out the old ones
	if _, ok := d.remember(to, epoch+1); !ok {
		t.Fatal("stale queries were not forgotten")
	}
}
