package main

import (
	"math/rand"
	"net/netip"
	"syscall"
	"testing"
)

func udp4Packet(dst [4]byte, port uint16) []byte {
	p := make([]byte, 28)
	p[0] = 0x45
	p[9] = syscall.IPPROTO_UDP
	copy(p[12:], []byte{10, 0, 2, 15})
	copy(p[16:], dst[:])
	p[22], p[23] = byte(port>>8), byte(port)
	return p
}

// nflogMessage builds one NFULNL packet message as the kernel sends it.
func nflogMessage(packet []byte) []byte {
	attrs := append(nlAttr(1, make([]byte, 4)), nlAttr(nfulaPayload, packet)...) // PACKET_HDR, PAYLOAD
	attrs = append(attrs, nlAttr(10, []byte("prefix\x00"))...)
	msg := make([]byte, 20, 20+len(attrs))
	msg = append(msg, attrs...)
	putNative32(msg, uint32(len(msg)))
	putNative16(msg[4:], nfulnlMsgPacket)
	return msg
}

func TestParseNflogFindsEveryPayload(t *testing.T) {
	a := udp4Packet([4]byte{192, 0, 2, 1}, 123)
	b := udp4Packet([4]byte{198, 51, 100, 2}, 443)
	other := nflogMessage(a)
	putNative16(other[4:], nfulnlMsgConfig) // not a packet: skipped
	stream := append(append(append([]byte(nil), nflogMessage(a)...), other...), nflogMessage(b)...)
	var got []netip.AddrPort
	parseNflog(stream, func(p []byte) {
		if d, ok := udpDestination(p); ok {
			got = append(got, d)
		}
	})
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:123"), netip.MustParseAddrPort("198.51.100.2:443")}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v", got)
	}
}

func TestUdpDestination(t *testing.T) {
	p := udp4Packet([4]byte{203, 0, 113, 5}, 51820)
	if d, ok := udpDestination(p); !ok || d.String() != "203.0.113.5:51820" {
		t.Fatalf("%v %v", d, ok)
	}
	tcp := append([]byte(nil), p...)
	tcp[9] = syscall.IPPROTO_TCP
	for _, bad := range [][]byte{nil, {0x45}, p[:22], tcp, {0x41, 0, 0, 0}} {
		if d, ok := udpDestination(bad); ok {
			t.Fatalf("% x read as %v", bad, d)
		}
	}
	v6 := make([]byte, 48)
	v6[0] = 0x60
	v6[6] = syscall.IPPROTO_UDP
	copy(v6[24:40], netip.MustParseAddr("2001:db8::9").AsSlice())
	v6[42], v6[43] = 0x01, 0xbb
	if d, ok := udpDestination(v6); !ok || d.String() != "[2001:db8::9]:443" {
		t.Fatalf("v6 %v %v", d, ok)
	}
}

func TestParseNflogSurvivesRandomInput(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	good := nflogMessage(udp4Packet([4]byte{192, 0, 2, 1}, 123))
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), good...)
		for k := rng.Intn(6); k >= 0; k-- {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		b = b[:rng.Intn(len(b)+1)]
		parseNflog(b, func(p []byte) { udpDestination(p) })
	}
}

func TestDestinationsRoundTrip(t *testing.T) {
	for _, s := range []string{"192.0.2.1:22", "[2001:db8::1]:443"} {
		ap := netip.MustParseAddrPort(s)
		got, err := decodeDestination(encodeDestination(nil, ap))
		if err != nil || got != ap {
			t.Fatalf("%s: %v %v", s, got, err)
		}
	}
	for _, n := range []int{0, 1, 5, 7, 17, 19} {
		if _, err := decodeDestination(make([]byte, n)); err == nil {
			t.Fatalf("%d bytes read as a destination", n)
		}
	}
}

func TestParseSockaddr(t *testing.T) {
	b := make([]byte, 28)
	putNative16(b, syscall.AF_INET)
	b[2], b[3] = 0x00, 0x16
	copy(b[4:], []byte{140, 82, 121, 3})
	if d, err := parseSockaddr(b); err != nil || d.String() != "140.82.121.3:22" {
		t.Fatalf("%v %v", d, err)
	}
	putNative16(b, syscall.AF_INET6)
	copy(b[8:24], netip.MustParseAddr("2001:db8::5").AsSlice())
	if d, err := parseSockaddr(b); err != nil || d.String() != "[2001:db8::5]:22" {
		t.Fatalf("%v %v", d, err)
	}
	putNative16(b, 99)
	if _, err := parseSockaddr(b); err == nil {
		t.Fatal("family 99 parsed")
	}
}
