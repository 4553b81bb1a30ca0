// DNS for the guest: the image's nftables rules send every UDP query to port 53 — whatever
// server the program asked, the resolv.conf one or its own — to this listener, which hands it to
// the host (DNS_QUERY) and sends the host's answer back (conntrack makes it come from the server
// the program asked). The host answers by the sprite's policy: a name it may not reach is
// REFUSED at once, so resolvers fail fast instead of timing out. DNS over TCP is an ordinary
// relayed connection to port 53, which the host answers itself.
package main

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

const (
	// maxDNSPending bounds queries waiting for the host; beyond it a query is dropped (the
	// program's resolver asks again).
	maxDNSPending = 256
	// dnsPendingTTL: a query the host did not answer in this long is forgotten (resolvers give up
	// after 5 s and ask again with a new id).
	dnsPendingTTL = 10 * time.Second
	// maxDNSMessage: larger datagrams are no query the host would take (it answers at most 1024).
	maxDNSMessage = 4096
)

type dnsProxy struct {
	n *network

	mu      sync.Mutex
	pc      *net.UDPConn
	pending map[uint16]pendingQuery
	next    uint16
}

type pendingQuery struct {
	to    *net.UDPAddr
	epoch uint64
	at    time.Time
}

func newDNSProxy(n *network) *dnsProxy {
	return &dnsProxy{n: n, pending: map[uint16]pendingQuery{}}
}

func (d *dnsProxy) serve(pc *net.UDPConn) {
	d.mu.Lock()
	d.pc = pc
	d.mu.Unlock()
	buf := make([]byte, maxDNSMessage+1)
	for {
		k, from, err := pc.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			d.n.a.cfg.logf("network: DNS stopped: %v", err)
			return
		}
		if k > maxDNSMessage || k == 0 {
			continue
		}
		d.query(from, buf[:k])
	}
}

// query hands one datagram to the host; it is dropped when it cannot be carried now.
func (d *dnsProxy) query(from *net.UDPAddr, msg []byte) {
	epoch, _, ready := d.n.current()
	if !ready {
		return
	}
	handle, ok := d.remember(from, epoch)
	if !ok {
		return
	}
	payload := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), handle)
	if !d.n.trySend(epoch, encodeFrame(tDnsQuery, 0, append(payload, msg...))) {
		d.take(handle)
	}
}

// remember gives the query a handle (expired ones are forgotten first), or ok=false when too
// many are waiting.
func (d *dnsProxy) remember(to *net.UDPAddr, epoch uint64) (uint16, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if len(d.pending) >= maxDNSPending {
		for h, q := range d.pending {
			if now.Sub(q.at) > dnsPendingTTL || q.epoch != epoch {
				delete(d.pending, h)
			}
		}
		if len(d.pending) >= maxDNSPending {
			return 0, false
		}
	}
	for {
		d.next++
		if _, used := d.pending[d.next]; !used {
			break
		}
	}
	d.pending[d.next] = pendingQuery{to: to, epoch: epoch, at: now}
	return d.next, true
}

func (d *dnsProxy) take(handle uint16) (pendingQuery, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.pending[handle]
	delete(d.pending, handle)
	return q, ok
}

// answer sends the host's answer to whoever asked; an answer nobody waits for is dropped.
func (d *dnsProxy) answer(handle uint16, msg []byte) {
	q, ok := d.take(handle)
	if !ok || q.epoch != d.n.a.epoch.Load() || len(msg) == 0 {
		return
	}
	d.mu.Lock()
	pc := d.pc
	d.mu.Unlock()
	if pc != nil {
		pc.WriteToUDP(msg, q.to)
	}
}

// forget drops every pending query (the epoch ended).
func (d *dnsProxy) forget() {
	d.mu.Lock()
	d.pending = map[uint16]pendingQuery{}
	d.mu.Unlock()
}
