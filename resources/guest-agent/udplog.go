// Refused datagrams, reported: the image's nftables rules reject every UDP datagram but DNS
// (the program gets "connection refused" at once) after logging its headers to an NFLOG group.
// This reads that group over netfilter's netlink socket and tells the host each destination
// (UDP_REFUSED), so the refusal shows in the daemon's log and in `spritely net show` like any
// other. Reports are lossy and rate-limited: they only inform, the kernel already refused.
package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

const (
	netlinkNetfilter = 12     // NETLINK_NETFILTER
	nfulnlMsgPacket  = 4 << 8 // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET
	nfulnlMsgConfig  = 4<<8 | 1
	nfulaPayload     = 9 // NFULA_PAYLOAD
	nfulaCfgCmd      = 1
	nfulaCfgMode     = 2
	nfulaCfgQthresh  = 5
	nfulnlCmdBind    = 1
	nfulnlCopyPacket = 2
	nlmsgError       = 2
	// copyRange: enough of each packet for its IP and UDP headers.
	copyRange = 128
	// reportsPerSecond bounds what the reports cost the channel.
	reportsPerSecond = 20
)

func (n *network) reportRefusedDatagrams(group uint16) {
	fd, err := nflogOpen(group)
	if err != nil {
		n.a.cfg.logf("network: refused datagrams are not reported: %v", err)
		return
	}
	defer syscall.Close(fd)
	buf := make([]byte, 64*1024)
	tokens, last := float64(reportsPerSecond), time.Now()
	for {
		k, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ENOBUFS) {
				continue // a burst overflowed the socket: those reports are lost
			}
			n.a.cfg.logf("network: reading refused datagrams stopped: %v", err)
			return
		}
		parseNflog(buf[:k], func(packet []byte) {
			dst, ok := udpDestination(packet)
			if !ok {
				return
			}
			now := time.Now()
			tokens += now.Sub(last).Seconds() * reportsPerSecond
			if tokens > reportsPerSecond {
				tokens = reportsPerSecond
			}
			last = now
			if tokens < 1 {
				return
			}
			tokens--
			if epoch, _, ready := n.current(); ready {
				n.trySend(epoch, encodeFrame(tUdpRefused, 0, encodeDestination(nil, dst)))
			}
		})
	}
}

// nflogOpen binds a netlink socket to an NFLOG group, copying the first bytes of each packet
// and delivering each at once.
func nflogOpen(group uint16) (int, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, netlinkNetfilter)
	if err != nil {
		return -1, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	mode := []byte{0, 0, 0, copyRange, nfulnlCopyPacket, 0} // be32 copy range, u8 mode, pad
	steps := [][]byte{
		nlAttr(nfulaCfgCmd, []byte{nfulnlCmdBind}),
		nlAttr(nfulaCfgMode, mode),
		nlAttr(nfulaCfgQthresh, []byte{0, 0, 0, 1}),
	}
	for i, attr := range steps {
		if err := nlRequest(fd, uint32(i+1), group, attr); err != nil {
			syscall.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// nlRequest sends one NFULNL config message and waits for its acknowledgement.
func nlRequest(fd int, seq uint32, group uint16, attr []byte) error {
	msg := make([]byte, 16, 16+4+len(attr))
	nfgen := []byte{syscall.AF_UNSPEC, 0, byte(group >> 8), byte(group)}
	msg = append(append(msg, nfgen...), attr...)
	putNative32(msg[0:], uint32(len(msg)))
	putNative16(msg[4:], nfulnlMsgConfig)
	putNative16(msg[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_ACK)
	putNative32(msg[8:], seq)
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		k, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		b := buf[:k]
		for len(b) >= 16 {
			l := int(native32(b))
			if l < 16 || l > len(b) {
				break
			}
			if native16(b[4:]) == nlmsgError && native32(b[8:]) == seq && l >= 20 {
				if code := int32(native32(b[16:])); code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			}
			b = b[align4(l):]
		}
	}
}

// parseNflog calls fn with the packet of every NFULNL packet message in one netlink datagram.
func parseNflog(b []byte, fn func(packet []byte)) {
	for len(b) >= 16 {
		l := int(native32(b))
		if l < 16 || l > len(b) {
			return
		}
		if native16(b[4:]) == nfulnlMsgPacket && l >= 20 {
			attrs := b[20:l] // after the header and the nfgenmsg
			for len(attrs) >= 4 {
				al := int(native16(attrs))
				if al < 4 || al > len(attrs) {
					break
				}
				if native16(attrs[2:])&0x3fff == nfulaPayload {
					fn(attrs[4:al])
				}
				attrs = attrs[min(align4(al), len(attrs)):]
			}
		}
		b = b[min(align4(l), len(b)):]
	}
}

// udpDestination reads the destination of an IPv4 or IPv6 UDP packet (no IPv6 extension headers).
func udpDestination(p []byte) (netip.AddrPort, bool) {
	if len(p) < 1 {
		return netip.AddrPort{}, false
	}
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0x0f) * 4
		if ihl < 20 || len(p) < ihl+4 || p[9] != syscall.IPPROTO_UDP {
			return netip.AddrPort{}, false
		}
		port := uint16(p[ihl+2])<<8 | uint16(p[ihl+3])
		return netip.AddrPortFrom(netip.AddrFrom4(*(*[4]byte)(p[16:20])), port), true
	case 6:
		if len(p) < 44 || p[6] != syscall.IPPROTO_UDP {
			return netip.AddrPort{}, false
		}
		port := uint16(p[42])<<8 | uint16(p[43])
		return netip.AddrPortFrom(netip.AddrFrom16(*(*[16]byte)(p[24:40])), port), true
	}
	return netip.AddrPort{}, false
}

func nlAttr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, align4(4+len(data)))
	putNative16(b, uint16(4+len(data)))
	putNative16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// nativeEndian: netlink headers and socket address families are in the host's byte order.
var nativeEndian binary.ByteOrder = func() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}()

func native16(b []byte) uint16       { return nativeEndian.Uint16(b) }
func native32(b []byte) uint32       { return nativeEndian.Uint32(b) }
func putNative16(b []byte, v uint16) { nativeEndian.PutUint16(b, v) }
func putNative32(b []byte, v uint32) { nativeEndian.PutUint32(b, v) }
