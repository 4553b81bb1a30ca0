// Where a redirected connection was going: the nftables redirect rewrites the destination to the
// relay's listener, and conntrack remembers the original, which SO_ORIGINAL_DST reads back.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// soOriginalDst is SO_ORIGINAL_DST (IPv4, SOL_IP) and IP6T_SO_ORIGINAL_DST (IPv6, SOL_IPV6).
const soOriginalDst = 80

func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	level := syscall.SOL_IP
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok && la.IP.To4() == nil {
		level = syscall.SOL_IPV6
	}
	var raw [28]byte // sockaddr_in6, the larger of the two
	var serr error
	err = rc.Control(func(fd uintptr) {
		size := uint32(len(raw))
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst, uintptr(unsafe.Pointer(&raw[0])), uintptr(unsafe.Pointer(&size)), 0)
		if e != 0 {
			serr = e
		}
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("SO_ORIGINAL_DST: %w", serr)
	}
	return parseSockaddr(raw[:])
}

// parseSockaddr reads a sockaddr_in or sockaddr_in6 (family in host order, port big-endian).
func parseSockaddr(b []byte) (netip.AddrPort, error) {
	if len(b) < 2 {
		return netip.AddrPort{}, errors.New("short sockaddr")
	}
	family := native16(b)
	switch {
	case family == syscall.AF_INET && len(b) >= 8:
		port := uint16(b[2])<<8 | uint16(b[3])
		return netip.AddrPortFrom(netip.AddrFrom4(*(*[4]byte)(b[4:8])), port), nil
	case family == syscall.AF_INET6 && len(b) >= 24:
		port := uint16(b[2])<<8 | uint16(b[3])
		return netip.AddrPortFrom(netip.AddrFrom16(*(*[16]byte)(b[8:24])).Unmap(), port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("sockaddr of family %d", family)
}
