// The fast carrier for relayed TCP under QEMU (docs/network.md, "DNS and transparent TCP"): a
// redirected connection is handed to the daemon's egress proxy through QEMU's guest forward
// (10.0.2.100:3128, virtio-net) as `CONNECT address:port` with `X-Spritely-Transparent: 1`, so
// the daemon decides it exactly as a relayed one (by the names its DNS gave this guest), and the
// bytes then move kernel to kernel (splice) instead of through this program and the 4 KiB
// buffers of the virtio-serial port. Where the forward does not answer (another platform, a
// daemon without it), the connection goes over the agent's channel instead (relay.go).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

const (
	// forwardDialTimeout: the forward is QEMU's, in this machine; it answers at once or not at all.
	forwardDialTimeout = 3 * time.Second
	// forwardAnswerTimeout: the daemon answers a CONNECT once it decided and connected (it gives
	// up connecting after 15 s and says so).
	forwardAnswerTimeout = 30 * time.Second
	// maxForwardAnswer bounds the proxy's answer head (status line and headers).
	maxForwardAnswer = 16 * 1024
)

// errNoForward: the forward is not there; the caller carries the connection another way.
var errNoForward = errors.New("the guest forward does not answer")

// carryViaForward serves one guest connection through the forward; errNoForward means nothing
// was sent yet and the connection is still the caller's.
func (r *relay) carryViaForward(c *net.TCPConn, dst netip.AddrPort) error {
	up, err := net.DialTimeout("tcp", r.forward, forwardDialTimeout)
	if err != nil {
		return errNoForward
	}
	u := up.(*net.TCPConn)
	host := dst.String() // 1.2.3.4:22 or [2001:db8::1]:22
	u.SetDeadline(time.Now().Add(forwardAnswerTimeout))
	if _, err := fmt.Fprintf(u, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nX-Spritely-Transparent: 1\r\n\r\n", host, host); err != nil {
		u.Close()
		return errNoForward
	}
	br := bufio.NewReaderSize(io.LimitReader(u, maxForwardAnswer), 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		r.n.refusedLog.printf("network: %s: no answer from the daemon's forward: %v", dst, err)
		u.Close()
		resetConn(c)
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		why := resp.Header.Get("X-Spritely-Error")
		if why == "" {
			why = resp.Status
		}
		r.n.refusedLog.printf("network: %s refused: %s", dst, printableText([]byte(why)))
		u.Close()
		resetConn(c)
		return nil
	}
	u.SetDeadline(time.Time{})
	// bytes of the destination's that came with the answer (a server that speaks first)
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		if _, err := c.Write(early); err != nil {
			u.SetLinger(0)
			u.Close()
			resetConn(c)
			return nil
		}
	}
	splice(c, u)
	return nil
}

// splice copies both ways (the kernel's splice between the two sockets), passing half-closes
// on and a reset as a reset.
func splice(a, b *net.TCPConn) {
	done := make(chan struct{}, 2)
	one := func(dst, src *net.TCPConn) {
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
				resetConn(dst)
				resetConn(src)
			} else {
				dst.Close()
				src.Close()
			}
		} else {
			dst.CloseWrite()
		}
		done <- struct{}{}
	}
	go one(a, b)
	go one(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
