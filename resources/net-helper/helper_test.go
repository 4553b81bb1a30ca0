package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/bufferv2"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	eth := bytes.Repeat([]byte{7}, 60)
	if err := writeFrame(w, [][]byte{eth[:14], eth[14:]}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	got, err := readFrame(bufio.NewReader(&b), nil)
	if err != nil || !bytes.Equal(got, eth) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, n := range []uint32{maxFrame + 1, 1 << 31, 13, 0} {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], n)
		if _, err := readFrame(bufio.NewReader(bytes.NewReader(append(hdr[:], make([]byte, 100)...))), nil); err == nil {
			t.Fatalf("a frame of %d bytes was accepted", n)
		}
	}
	// a frame cut short by the end of the stream is an error, not a short frame
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 100)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(append(hdr[:], make([]byte, 50)...))), nil); err == nil {
		t.Fatal("a truncated frame was accepted")
	}
}

func TestDaemonAnswers(t *testing.T) {
	var rf *refusal
	if err := parseRefusal("NO refused 10.0.0.1:22 refused: the LAN"); !errors.As(err, &rf) || rf.kind != "refused" || rf.message != "10.0.0.1:22 refused: the LAN" {
		t.Fatalf("parsed %#v", err)
	}
	if err := parseRefusal("YES"); errors.As(err, &rf) {
		t.Fatal("a line that is not NO was read as a refusal")
	}
	if _, err := readLine(bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 5000)+"\n"), 16), 1024); err == nil {
		t.Fatal("an over-long line was accepted")
	}
	if l, err := readLine(bufio.NewReaderSize(strings.NewReader("OK\nrest"), 16), 1024); err != nil || l != "OK" {
		t.Fatalf("line %q %v", l, err)
	}
}

func TestReportRate(t *testing.T) {
	r := newDNSRelay(&daemon{})
	now := time.Now()
	r.last = now
	n := 0
	for i := 0; i < 1000; i++ {
		if r.allowReport(now) {
			n++
		}
	}
	if n != reportBurst {
		t.Fatalf("a burst let %d reports through, want %d", n, reportBurst)
	}
	if !r.allowReport(now.Add(time.Second)) {
		t.Fatal("no report a second later")
	}
}

// fakeDaemon answers like vm/net/netstack-link.ts: TCP to port 7 is an echo, to port 9 refused;
// DNS queries are answered with "answer:"+query; refused datagrams are recorded.
type fakeDaemon struct {
	path    string
	headers chan string
	udp     chan string
}

func startFakeDaemon(t testing.TB) *fakeDaemon {
	d := &fakeDaemon{path: filepath.Join(t.TempDir(), "d.sock"), headers: make(chan string, 100), udp: make(chan string, 100)}
	l, err := net.Listen("unix", d.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()
	return d
}

func (d *fakeDaemon) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	line = strings.TrimSuffix(line, "\n")
	d.headers <- line
	switch {
	case line == "CTL":
		for {
			typ, tag, payload, err := readControlFrame(r)
			if err != nil {
				return
			}
			switch typ {
			case frameDNSQuery:
				ans := append([]byte("answer:"), payload...)
				out := make([]byte, frameHeader+len(ans))
				out[0] = frameDNSAnswer
				binary.BigEndian.PutUint32(out[1:5], tag)
				binary.BigEndian.PutUint16(out[5:7], uint16(len(ans)))
				copy(out[frameHeader:], ans)
				c.Write(out)
			case frameUDPRefused:
				d.udp <- net.IP(payload[:4]).String() + ":" + itoa(int(binary.BigEndian.Uint16(payload[4:])))
			}
		}
	case strings.HasSuffix(line, " 7"):
		io.WriteString(c, "OK\n")
		io.Copy(c, r)
		c.(*net.UnixConn).CloseWrite()
	default:
		io.WriteString(c, "NO refused spritely: "+line+" refused: not allowed\n")
	}
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// guestStack is a second netstack playing the guest: 10.0.3.15/24, default route via the helper.
func guestStack(t testing.TB, link net.Conn) *stack.Stack {
	mac, _ := net.ParseMAC("52:54:00:12:34:57")
	ch := channel.New(256, mtu, tcpip.LinkAddress(mac))
	s, err := newIPv4Stack(ch)
	if err != nil {
		t.Fatal(err)
	}
	s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.Address(net.IPv4(10, 0, 3, 15).To4()), PrefixLen: 24}}, stack.AddressProperties{})
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, Gateway: tcpip.Address(gatewayIP), NIC: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); link.Close(); s.Close() })
	go func() {
		w := bufio.NewWriter(link)
		for {
			pkt := ch.ReadContext(ctx)
			if pkt.IsNil() {
				return
			}
			writeFrame(w, pkt.AsSlices())
			pkt.DecRef()
			w.Flush()
		}
	}()
	go func() {
		r := bufio.NewReader(link)
		for {
			f, err := readFrame(r, nil)
			if err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferv2.MakeWithData(f)})
			ch.InjectInbound(0, pkt)
			pkt.DecRef()
		}
	}()
	return s
}

func startHelper(t testing.TB) (*fakeDaemon, *stack.Stack) {
	d := startFakeDaemon(t)
	dm := &daemon{path: d.path}
	n, err := newNetwork(dm)
	if err != nil {
		t.Fatal(err)
	}
	helperEnd, guestEnd := net.Pipe()
	go func() { n.serve(helperEnd); n.close(); dm.close() }()
	return d, guestStack(t, guestEnd)
}

func addr(a string, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.Address(net.ParseIP(a).To4()), Port: port}
}

func TestGuestTCPThroughTheDaemon(t *testing.T) {
	d, g := startHelper(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, g, addr("203.0.113.9", 7), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("an allowed connection failed: %v", err)
	}
	if h := <-d.headers; h != "TCP 203.0.113.9 7" {
		t.Fatalf("the daemon was asked %q", h)
	}
	big := bytes.Repeat([]byte("spritely"), 64<<10)
	go func() { c.Write(big); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("echo: %d bytes of %d, %v", len(got), len(big), err)
	}
	c.Close()

	// refused by the daemon: the guest's connect fails at once (a reset), not after a timeout
	start := time.Now()
	if _, err := gonet.DialContextTCP(ctx, g, addr("198.51.100.1", 9), ipv4.ProtocolNumber); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a refused connection: %v", err)
	}
	if h := <-d.headers; h != "TCP 198.51.100.1 9" {
		t.Fatalf("the daemon was asked %q", h)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("the refusal took %v", time.Since(start))
	}
}

func TestGuestDNSAndOtherUDP(t *testing.T) {
	d, g := startHelper(t)
	c, err := gonet.DialUDP(g, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.Address(net.IPv4(10, 0, 2, 3).To4()), Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"query-1", "query-2"} {
		if _, err := c.Write([]byte(q)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "answer:"+q {
			t.Fatalf("answer %q %v", buf[:n], err)
		}
	}
	// resolvers open a socket per query: many more than maxDNSFlows in a row are all answered,
	// since each flow ends soon after its answer
	for i := 0; i < maxDNSFlows*2; i++ {
		q, err := gonet.DialUDP(g, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.Address(net.IPv4(10, 0, 2, 3).To4()), Port: 53}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		q.Write([]byte("again"))
		q.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		if n, err := q.Read(buf); err != nil || string(buf[:n]) != "answer:again" {
			t.Fatalf("query %d on a new socket: %q %v", i, buf[:n], err)
		}
		q.Close()
		if (i+1)%(maxDNSFlows/2) == 0 {
			// let the flows answered so far linger out (10 s flows would not have)
			time.Sleep(4 * dnsFlowLinger)
		}
	}
	u, err := gonet.DialUDP(g, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.Address(net.IPv4(192, 0, 2, 7).To4()), Port: 443}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("quic"))
	select {
	case got := <-d.udp:
		if got != "192.0.2.7:443" {
			t.Fatalf("reported %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the refused datagram was not reported")
	}
}

// BenchmarkFirstByte times what the host side adds to a guest connection's setup: a guest stack's
// connect through this stack and the daemon's socket (a fake daemon that echoes), one byte there
// and back. `go test -bench FirstByte` (docs/benchmarks.md).
func BenchmarkFirstByte(b *testing.B) {
	d, g := startHelper(b)
	go func() {
		for range d.headers {
		}
	}()
	ctx := context.Background()
	buf := make([]byte, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := gonet.DialContextTCP(ctx, g, addr("203.0.113.9", 7), ipv4.ProtocolNumber)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
