// Command spritely-net is a sprite's own network on the host (docs/network.md, "The host network
// stack"). QEMU hands it the guest's second NIC as raw Ethernet frames over a unix socket; a
// userspace TCP/IP stack (gVisor's netstack, from Debian's golang-gvisor-gvisor-dev) terminates
// every guest TCP connection and UDP datagram here, and the daemon decides each one by the
// sprite's policy over its own unix socket (vm/net/netstack-link.ts). This process never opens a
// connection to anything but the daemon: it cannot reach the internet, this computer or the LAN by
// itself, so a guest that subverts it gains nothing the daemon would not give it. It carries no
// policy. The guest's bytes cross the host kernel once, not through the guest's loopback and its
// agent (three times faster under emulation: docs/benchmarks.md).
//
// Lifecycle: the QEMU driver starts it before QEMU (detached, like QEMU, so both outlive a daemon
// restart); it listens on -qemu, serves the one QEMU that connects, and exits when that connection
// ends or when no QEMU connects within a minute.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	qemuSock := flag.String("qemu", "", "unix socket to listen on for QEMU's -netdev stream")
	daemonSock := flag.String("daemon", "", "the daemon's unix socket for this sprite's network")
	flag.Parse()
	if *qemuSock == "" || *daemonSock == "" {
		fmt.Fprintln(os.Stderr, "usage: spritely-net -qemu SOCKET -daemon SOCKET")
		os.Exit(2)
	}
	if err := run(*qemuSock, *daemonSock); err != nil {
		fmt.Fprintln(os.Stderr, "spritely-net:", err)
		os.Exit(1)
	}
}

func run(qemuSock, daemonSock string) error {
	_ = os.Remove(qemuSock)
	l, err := net.Listen("unix", qemuSock)
	if err != nil {
		return err
	}
	if err := os.Chmod(qemuSock, 0o600); err != nil {
		l.Close()
		return err
	}
	_ = l.(*net.UnixListener).SetDeadline(time.Now().Add(time.Minute))
	c, err := l.Accept()
	l.Close()
	_ = os.Remove(qemuSock)
	if err != nil {
		return fmt.Errorf("no QEMU connected: %w", err)
	}
	d := &daemon{path: daemonSock}
	n, err := newNetwork(d)
	if err != nil {
		c.Close()
		return err
	}
	err = n.serve(c)
	c.Close()
	n.close()
	d.close()
	if err != nil {
		return fmt.Errorf("the guest's link ended: %w", err)
	}
	return nil
}
