package main

// Guest TCP connections: each SYN is held until the daemon decides. Allowed, the handshake
// completes and bytes flow both ways with half-close; refused or unreachable, the guest gets a
// reset (connection refused), as from a real network that says no.

import (
	"bufio"
	"io"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxHandshakes bounds the guest's connections waiting for a decision; more SYNs are dropped
// (the guest retries). The daemon caps open connections per sprite on its side.
const maxHandshakes = 256

func (n *network) acceptTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	ip := net.IP([]byte(id.LocalAddress))
	if ip.To4() == nil {
		r.Complete(true)
		return
	}
	up, upr, err := n.d.openTCP(ip, id.LocalPort)
	if err != nil {
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		// the guest gave up meanwhile
		r.Complete(true)
		up.Close()
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	splice(gonet.NewTCPConn(&wq, ep), up, upr)
}

// splice copies both ways; each side's end of stream becomes a half-close of the other, and
// both close once both directions are done (or one fails).
func splice(guest *gonet.TCPConn, up net.Conn, upr *bufio.Reader) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := io.Copy(up, guest); err != nil {
			up.Close()
			guest.Close()
			return
		}
		_ = up.(*net.UnixConn).CloseWrite()
	}()
	go func() {
		defer wg.Done()
		if _, err := io.Copy(guest, upr); err != nil {
			up.Close()
			guest.Close()
			return
		}
		_ = guest.CloseWrite()
	}()
	wg.Wait()
	up.Close()
	guest.Close()
}
