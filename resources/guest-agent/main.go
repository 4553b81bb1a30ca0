// spritely-agent: the guest side of the Spritely guest agent (docs/guest-agent.md). It runs in
// the guest's RAM from boot, so a sprite that is created, woken or restored from a saved state is
// ready for exec and terminals the instant it runs; the daemon reaches it over a virtio-serial
// port without any handshake but a HELLO. `--listen unix:PATH` serves a unix socket instead, for
// tests and development on a host.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const defaultPort = "/dev/virtio-ports/org.spritely.agent.0"

func main() {
	port := flag.String("port", defaultPort, "the virtio-serial port to serve")
	listen := flag.String("listen", "", "serve a unix socket instead (unix:PATH), for tests and development")
	root := flag.String("root", "", "tests: write identity files under this directory and skip live changes (hostname, clock, RNG, sshd, resize2fs)")
	grace := flag.Duration("host-gone-grace", 2*time.Second, "how long the host may be gone before the sessions it opened are killed")
	version := flag.Bool("version", false, "print the protocol version and exit")
	tcpRelay := flag.String("tcp-relay", "", "where redirected TCP connections arrive (default 127.0.0.1:15301 on the port, off with --listen)")
	dns := flag.String("dns", "", "where redirected DNS queries arrive, UDP (default 127.0.0.1:15353 on the port, off with --listen)")
	udpLogGroup := flag.Int("udp-log-group", -1, "the NFLOG group of refused datagrams (default 53 on the port, off with --listen; 0 = off)")
	testOriginalDst := flag.String("test-original-dst", "", "tests: the destination of a relayed connection the kernel did not redirect")
	flag.Parse()
	if *version {
		fmt.Printf("spritely-agent protocol %d\n", ProtocolVersion)
		return
	}
	logger := log.New(os.Stderr, "spritely-agent: ", 0)
	// the host hanging up a pty must not take the agent with it
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)

	var tr transport
	var err error
	if *listen != "" {
		path := strings.TrimPrefix(*listen, "unix:")
		if !strings.HasPrefix(*listen, "unix:") || path == "" {
			logger.Fatalf("--listen wants unix:PATH, got %q", *listen)
		}
		tr, err = listenUnix(path)
	} else {
		var vp *virtioPort
		vp, err = openVirtioPort(*port)
		if err == nil && os.Getenv("SPRITELY_AGENT_DEBUG") != "" {
			vp.debug = logger.Printf
		}
		tr = vp
	}
	if err != nil {
		logger.Fatalf("cannot open the host channel: %v", err)
	}
	netCfg := netConfig{tcpRelay: *tcpRelay, dns: *dns, udpLogGroup: *udpLogGroup, testOriginalDst: *testOriginalDst}
	if *listen == "" {
		netCfg = withGuestDefaults(netCfg)
	} else if netCfg.udpLogGroup < 0 {
		netCfg.udpLogGroup = 0
	}
	a := newAgent(tr, config{root: *root, logf: logger.Printf, hostGoneGrace: *grace, net: netCfg})
	logger.Printf("serving protocol %d (pid %d)", ProtocolVersion, os.Getpid())
	logger.Fatal(a.run())
}
