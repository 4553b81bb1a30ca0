// The two ends the agent can talk through. In a sprite it is a virtio-serial port; for tests on
// a host it listens on a unix socket. Both behave the same way towards the agent: Read returns
// errHostGone once when the host side went away (and later reads wait for it to come back), and
// Write waits while no host is there — it never fails just because nobody is listening.
package main

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

var errHostGone = errors.New("the host side disconnected")

type transport interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	hostPresent() bool
}

// virtioPort is /dev/virtio-ports/NAME opened non-blocking and registered with Go's poller, which
// is edge-triggered. The Linux driver's semantics (drivers/char/virtio_console.c):
//   - read returns 0 while the host side is not connected and nothing is buffered; poll then
//     reports POLLHUP on every call, so a level-triggered loop would spin. Waiting for the next
//     edge instead wakes us exactly when the host connects or data arrives.
//   - write returns EAGAIN while the host is not connected (or QEMU has throttled the port because
//     its socket is full); the next edge comes when that changes.
//   - QEMU discards what the guest had queued when the host disconnects.
//   - The connect notification travels on the control queue and is handled later, in a work
//     item, than data on the port's own queue: right after a host connects, its first bytes can
//     be read while the driver still says "not connected", so a read of 0 right after data is
//     not proof that the host left (measured: the HELLO arrived, then read returned 0). The agent
//     therefore acts on an absence only after a grace period (agent.go).
type virtioPort struct {
	debug    func(format string, args ...any)
	f        *os.File
	rc       syscall.RawConn
	goneSeen bool // errHostGone already reported for the current absence
	present  atomic.Bool
}

func openVirtioPort(path string) (*virtioPort, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &virtioPort{f: f, rc: rc, debug: func(string, ...any) {}}, nil
}

func (p *virtioPort) Read(b []byte) (int, error) {
	var n int
	var rerr error
	gone := false
	err := p.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr == syscall.EINTR {
				continue
			}
			break
		}
		p.debug("read: n=%d err=%v goneSeen=%v", n, rerr, p.goneSeen)
		switch {
		case rerr == syscall.EAGAIN:
			p.present.Store(true)
			return false // connected, nothing to read: wait for the next edge
		case rerr != nil:
			return true
		case n == 0:
			p.present.Store(false)
			if !p.goneSeen {
				p.goneSeen = true
				gone = true
				return true
			}
			return false // still no host: wait for the next edge (it connects, or data)
		default:
			p.goneSeen = false
			p.present.Store(true)
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if gone {
		return 0, errHostGone
	}
	return n, rerr
}

func (p *virtioPort) hostPresent() bool { return p.present.Load() }

func (p *virtioPort) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		var n int
		var werr error
		err := p.rc.Write(func(fd uintptr) bool {
			for {
				n, werr = syscall.Write(int(fd), b[written:])
				if werr == syscall.EINTR {
					continue
				}
				break
			}
			p.debug("write %d: n=%d err=%v", len(b)-written, n, werr)
			return werr != syscall.EAGAIN // EAGAIN: no host, or throttled; wait for the next edge
		})
		if err != nil {
			return written, err
		}
		if werr != nil {
			return written, werr
		}
		written += n
	}
	return written, nil
}

// unixListener serves one host connection at a time on a unix socket (tests and development).
// A connection ending is the host going away, like a virtio port's host side closing.
type unixListener struct {
	ln      net.Listener
	mu      sync.Mutex
	cond    *sync.Cond
	conn    net.Conn
	readErr chan error
}

func listenUnix(path string) (*unixListener, error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	u := &unixListener{ln: ln}
	u.cond = sync.NewCond(&u.mu)
	return u, nil
}

func (u *unixListener) hostPresent() bool { return u.current() != nil }

func (u *unixListener) current() net.Conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conn
}

func (u *unixListener) Read(b []byte) (int, error) {
	c := u.current()
	if c == nil {
		nc, err := u.ln.Accept()
		if err != nil {
			return 0, err
		}
		u.mu.Lock()
		u.conn = nc
		u.cond.Broadcast()
		u.mu.Unlock()
		c = nc
	}
	n, err := c.Read(b)
	if err != nil {
		u.mu.Lock()
		u.conn = nil
		u.mu.Unlock()
		c.Close()
		if n > 0 {
			return n, nil
		}
		return 0, errHostGone
	}
	return n, nil
}

func (u *unixListener) Write(b []byte) (int, error) {
	for {
		u.mu.Lock()
		for u.conn == nil {
			u.cond.Wait()
		}
		c := u.conn
		u.mu.Unlock()
		n, err := c.Write(b)
		if err == nil {
			return n, nil
		}
		if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			// that host is gone; like virtio (QEMU drops the guest's queue on disconnect), what
			// was not written is dropped and the next host gets the frames after it
			u.mu.Lock()
			if u.conn == c {
				u.conn = nil
			}
			u.mu.Unlock()
			return len(b), nil
		}
		return n, err
	}
}
