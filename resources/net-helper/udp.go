package main

// Guest UDP: DNS (port 53, to any server) is answered by the daemon under the sprite's policy;
// every other datagram is dropped and reported to the daemon (its log and `net show`), at most
// reportRate a second. QUIC and the like then fall back to TCP.

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	dnsPort = 53
	// maxDNSFlows bounds the guest's DNS sockets served at once; datagrams of more are dropped.
	// Resolvers open a socket per query (c-ares, glibc), so a flow ends soon after its answers.
	maxDNSFlows = 512
	// dnsFlowIdle ends a DNS socket's flow after this long without a query while one is unanswered.
	dnsFlowIdle = 10 * time.Second
	// dnsFlowLinger ends it this long after its last answer (a resolver that asks A and AAAA on
	// one socket sends both at once; one that asks again on it later gets a new flow).
	dnsFlowLinger = 250 * time.Millisecond
	// maxDNSPending bounds queries waiting for the daemon's answer.
	maxDNSPending = 512
	reportRate    = 20
	reportBurst   = 40
)

type dnsRelay struct {
	d *daemon

	mu      sync.Mutex
	flows   int
	nextTag uint32
	pending map[uint32]pendingQuery
	tokens  float64
	last    time.Time
}

type pendingQuery struct {
	conn *gonet.UDPConn
	at   time.Time
}

func newDNSRelay(d *daemon) *dnsRelay {
	r := &dnsRelay{d: d, pending: map[uint32]pendingQuery{}, tokens: reportBurst, last: time.Now()}
	d.onAnswer = r.answer
	return r
}

func (n *network) acceptUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	ip := net.IP([]byte(id.LocalAddress))
	if id.LocalPort != dnsPort {
		n.dns.reportRefused(ip, id.LocalPort)
		return
	}
	if !n.dns.takeFlow() {
		return
	}
	var wq waiter.Queue
	ep, err := r.CreateEndpoint(&wq)
	if err != nil {
		n.dns.dropFlow()
		return
	}
	go n.dns.serveFlow(gonet.NewUDPConn(n.s, &wq, ep))
}

func (r *dnsRelay) takeFlow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flows >= maxDNSFlows {
		return false
	}
	r.flows++
	return true
}

func (r *dnsRelay) dropFlow() {
	r.mu.Lock()
	r.flows--
	r.mu.Unlock()
}

// serveFlow forwards each query of one guest socket (a resolver may ask A and AAAA at once on
// one socket) until it has been idle for dnsFlowIdle.
func (r *dnsRelay) serveFlow(c *gonet.UDPConn) {
	defer r.dropFlow()
	defer c.Close()
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(dnsFlowIdle))
		n, err := c.Read(buf)
		if err != nil {
			r.forget(c)
			return
		}
		if n == 0 {
			continue
		}
		tag, ok := r.track(c)
		if !ok {
			continue
		}
		if err := r.d.send(frameDNSQuery, tag, buf[:n]); err != nil {
			r.take(tag)
		}
	}
}

func (r *dnsRelay) track(c *gonet.UDPConn) (uint32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if len(r.pending) >= maxDNSPending {
		for tag, p := range r.pending {
			if now.Sub(p.at) > dnsFlowIdle {
				delete(r.pending, tag)
			}
		}
		if len(r.pending) >= maxDNSPending {
			return 0, false
		}
	}
	r.nextTag++
	r.pending[r.nextTag] = pendingQuery{conn: c, at: now}
	return r.nextTag, true
}

func (r *dnsRelay) take(tag uint32) (pendingQuery, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[tag]
	delete(r.pending, tag)
	return p, ok
}

func (r *dnsRelay) forget(c *gonet.UDPConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for tag, p := range r.pending {
		if p.conn == c {
			delete(r.pending, tag)
		}
	}
}

// answer sends the daemon's answer back from the address the guest asked.
func (r *dnsRelay) answer(tag uint32, answer []byte) {
	p, ok := r.take(tag)
	if !ok {
		return
	}
	_ = p.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = p.conn.Write(answer)
	if !r.waiting(p.conn) {
		_ = p.conn.SetReadDeadline(time.Now().Add(dnsFlowLinger))
	}
}

// waiting says whether a query of this flow still waits for its answer.
func (r *dnsRelay) waiting(c *gonet.UDPConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pending {
		if p.conn == c {
			return true
		}
	}
	return false
}

// reportRefused tells the daemon about a dropped datagram, within the report rate.
func (r *dnsRelay) reportRefused(ip net.IP, port uint16) {
	v4 := ip.To4()
	if v4 == nil || !r.allowReport(time.Now()) {
		return
	}
	var payload [6]byte
	copy(payload[:4], v4)
	binary.BigEndian.PutUint16(payload[4:], port)
	go func() { _ = r.d.send(frameUDPRefused, 0, payload[:]) }()
}

// allowReport is a token bucket: reportRate a second, bursts of reportBurst.
func (r *dnsRelay) allowReport(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens += now.Sub(r.last).Seconds() * reportRate
	if r.tokens > reportBurst {
		r.tokens = reportBurst
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
