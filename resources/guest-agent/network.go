// The guest's network, carried to the host (docs/network.md "DNS and transparent TCP"). The
// image's nftables rules send every outbound TCP connection to the relay's listener and every DNS
// query to the DNS listener, and reject every other datagram after logging it to an NFLOG group
// this agent reads; all three go to the host on the agent's channel, where the daemon answers and
// decides by the sprite's policy. Nothing here decides anything: a guest root who stops the agent
// or removes the rules only loses its own network (QEMU routes nothing out by itself).
//
// Relayed connections and pending queries belong to the host connection they were opened on:
// they end with its epoch and never survive a HELLO, resumed or not (the host closed its side).
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// netConfig says what the agent serves for the guest's network; empty values switch a part off
// (the default when the agent serves a unix socket for tests).
type netConfig struct {
	// tcpRelay: where redirected TCP connections arrive (the nftables rules' redirect target).
	tcpRelay string
	// dns: the UDP address redirected DNS queries arrive at.
	dns string
	// udpLogGroup: the NFLOG group of refused datagrams (0: not read).
	udpLogGroup int
	// testOriginalDst: tests on a host without NAT — the destination of a connection whose
	// original destination the kernel does not know.
	testOriginalDst string
}

type network struct {
	a     *agent
	relay *relay
	dns   *dnsProxy

	mu   sync.Mutex
	quit chan struct{} // closed when the current epoch's network ends (reset)

	refusedLog *rateLog
	// where the listeners are (for the log and tests)
	relayAddr, dnsAddr net.Addr
}

func newNetwork(a *agent) *network {
	n := &network{a: a, quit: make(chan struct{}), refusedLog: newRateLog(a.cfg.logf, 20, 10*time.Second)}
	n.relay = newRelay(n)
	n.dns = newDNSProxy(n)
	return n
}

// start opens the listeners the configuration names; a part that cannot start is logged and
// left off (exec and terminals must keep working whatever happens to the network).
func (n *network) start(cfg netConfig) {
	logf := n.a.cfg.logf
	if cfg.testOriginalDst != "" {
		ap, err := netip.ParseAddrPort(cfg.testOriginalDst)
		if err != nil {
			logf("network: --test-original-dst: %v", err)
		} else {
			n.relay.fallbackDst = ap
		}
	}
	if cfg.tcpRelay != "" {
		ln, err := net.Listen("tcp", cfg.tcpRelay)
		if err != nil {
			logf("network: transparent TCP is off: %v", err)
		} else {
			n.relayAddr = ln.Addr()
			go n.relay.serve(ln.(*net.TCPListener))
		}
	}
	if cfg.dns != "" {
		addr, err := net.ResolveUDPAddr("udp", cfg.dns)
		var pc *net.UDPConn
		if err == nil {
			pc, err = net.ListenUDP("udp", addr)
		}
		if err != nil {
			logf("network: DNS is off: %v", err)
		} else {
			n.dnsAddr = pc.LocalAddr()
			go n.dns.serve(pc)
		}
	}
	if cfg.udpLogGroup > 0 {
		go n.reportRefusedDatagrams(uint16(cfg.udpLogGroup))
	}
}

// current returns the epoch to send in and its quit channel, or ok=false when no host has said
// HELLO (nothing can be carried now).
func (n *network) current() (epoch uint64, quit chan struct{}, ok bool) {
	n.a.mu.Lock()
	ready := n.a.ready
	n.a.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.a.epoch.Load(), n.quit, ready
}

// send queues a frame of the epoch, giving up when the epoch's network ends or done closes.
func (n *network) send(epoch uint64, quit <-chan struct{}, done <-chan struct{}, b []byte) bool {
	select {
	case n.a.out <- outFrame{epoch, b}:
		return true
	case <-quit:
		return false
	case <-done:
		return false
	}
}

// trySend queues a frame only if there is room now (DNS and reports are lossy by nature: a busy
// channel drops them instead of holding a listener up).
func (n *network) trySend(epoch uint64, b []byte) bool {
	select {
	case n.a.out <- outFrame{epoch, b}:
		return true
	default:
		return false
	}
}

// reset ends the network of the epoch that just ended: relayed connections are reset, pending
// queries forgotten.
func (n *network) reset(why string) {
	n.mu.Lock()
	close(n.quit)
	n.quit = make(chan struct{})
	n.mu.Unlock()
	if k := n.relay.abortAll(); k > 0 {
		n.a.cfg.logf("%s: resetting %d relayed connection(s)", why, k)
	}
	n.dns.forget()
}

// handle takes a host frame of the relay's types.
func (n *network) handle(f frame) error {
	switch f.typ {
	case tTcpConnected, tTcpData, tTcpEOF, tTcpWindow, tTcpClose:
		return n.relay.handle(f)
	case tDnsAnswer:
		if f.session != 0 || len(f.payload) < 2 {
			return fmt.Errorf("%w: DNS_ANSWER wants session 0, a handle and a message", errMalformed)
		}
		n.dns.answer(binary.BigEndian.Uint16(f.payload), f.payload[2:])
		return nil
	}
	return fmt.Errorf("%w: frame type 0x%02x is not one the host sends", errMalformed, f.typ)
}

// rateLog writes at most `max` lines per interval to the agent's log (the journal) and then one
// line saying how many it held back: the guest decides how often it is refused.
type rateLog struct {
	logf     func(string, ...any)
	max      int
	interval time.Duration
	mu       sync.Mutex
	start    time.Time
	n        int
	held     int
}

func newRateLog(logf func(string, ...any), max int, interval time.Duration) *rateLog {
	return &rateLog{logf: logf, max: max, interval: interval}
}

func (r *rateLog) printf(format string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.start) >= r.interval {
		if r.held > 0 {
			r.logf("%d more refused in the last %s (spritely net show on the host lists them)", r.held, r.interval)
		}
		r.start, r.n, r.held = now, 0, 0
	}
	r.n++
	ok := r.n <= r.max
	if !ok {
		r.held++
	}
	r.mu.Unlock()
	if ok {
		r.logf(format, args...)
	}
}

// The addresses the image's nftables rules redirect to (resources/guest/etc/nftables.conf; a
// unit spec checks that both say the same).
const (
	defaultTCPRelay    = "127.0.0.1:15301"
	defaultDNS         = "127.0.0.1:15353"
	defaultUDPLogGroup = 53
)

// withGuestDefaults fills what the flags left unset with what the image's rules expect.
func withGuestDefaults(c netConfig) netConfig {
	if c.tcpRelay == "" {
		c.tcpRelay = defaultTCPRelay
	}
	if c.dns == "" {
		c.dns = defaultDNS
	}
	if c.udpLogGroup < 0 {
		c.udpLogGroup = defaultUDPLogGroup
	}
	return c
}
