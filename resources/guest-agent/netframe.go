// Frames of the network relay (protocol version 3, docs/guest-agent.md "The network relay"): the
// guest's TCP connections and DNS queries travel to the host on the agent's channel, so the host
// decides every destination by the sprite's policy and nothing in the guest is trusted with it.
//
// A relayed TCP connection is a session the agent opens (an id with the top bit set, increasing
// within an epoch, never reused): TCP_CONNECT names the original destination; the host answers
// TCP_CONNECTED (then data flows both ways within each side's window) or TCP_CLOSE with a reason.
// TCP_EOF is a half-close; a connection is over when both sides sent TCP_EOF, or at a TCP_CLOSE
// from either side (a reset). DNS queries and refused UDP datagrams are messages on session 0.
package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const (
	tTcpConnect   = 0x30 // A, new agent id: u32 window · u16 port · address (4 or 16 bytes)
	tTcpConnected = 0x31 // H: u32 window
	tTcpData      = 0x32 // both: bytes (at least 1, within the receiver's window)
	tTcpEOF       = 0x33 // both: empty; the sender sends no more data (TCP half-close)
	tTcpWindow    = 0x34 // both: u32 bytes of credit (> 0)
	tTcpClose     = 0x35 // both: u8 reason · UTF-8 message (at most 1024 bytes); a reset
	tDnsQuery     = 0x38 // A, session 0: u16 handle · one DNS message as the guest sent it over UDP
	tDnsAnswer    = 0x39 // H, session 0: u16 handle · the answer
	tUdpRefused   = 0x3a // A, session 0: u16 port · address (4 or 16 bytes); a datagram the guest's rules refused
)

// Reasons in TCP_CLOSE. The agent sends closeReset only.
const (
	closeReset       = 0 // that side's end failed or was reset
	closeRefused     = 1 // the sprite's network policy refuses the destination
	closeUnreachable = 2 // allowed, but the destination did not resolve or answer
	closeBusy        = 3 // the sprite has as many connections open as it may
	closeInvalid     = 4 // not a destination (a port of 0, an address that is no address)
)

const maxCloseMessage = 1024

// isNetFrame: the types the network relay owns (0x30-0x3f).
func isNetFrame(typ byte) bool { return typ >= 0x30 && typ <= 0x3f }

// encodeDestination is u16 port followed by the address's 4 or 16 bytes.
func encodeDestination(b []byte, dst netip.AddrPort) []byte {
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	a := dst.Addr()
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

// decodeDestination reads what encodeDestination wrote; the whole payload must be used.
func decodeDestination(p []byte) (netip.AddrPort, error) {
	if len(p) != 2+4 && len(p) != 2+16 {
		return netip.AddrPort{}, fmt.Errorf("%w: a destination is a port and 4 or 16 address bytes, got %d bytes", errMalformed, len(p))
	}
	port := binary.BigEndian.Uint16(p)
	a, _ := netip.AddrFromSlice(p[2:])
	return netip.AddrPortFrom(a, port), nil
}

func tcpConnectPayload(window uint32, dst netip.AddrPort) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+2+16), window)
	return encodeDestination(b, dst)
}

func closeReasonName(r byte) string {
	switch r {
	case closeReset:
		return "reset"
	case closeRefused:
		return "refused"
	case closeUnreachable:
		return "unreachable"
	case closeBusy:
		return "busy"
	case closeInvalid:
		return "invalid"
	}
	return fmt.Sprintf("reason %d", r)
}
