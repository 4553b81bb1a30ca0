package main

// The userspace stack: one NIC facing the guest, the gateway's address on it, and every TCP
// connection and UDP datagram the guest sends (to any address) handed to tcp.go and udp.go.
// Nothing is routed or forwarded: the stack only answers ARP for the gateway and terminates
// transport connections; IPv6 and ICMP are not spoken at all.

import (
	"bufio"
	"context"
	"net"

	"gvisor.dev/gvisor/pkg/bufferv2"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const (
	nicID = 1
	// mtu matches the guest NIC's (a stream netdev offers no segmentation offloads).
	mtu = 1500
	// gatewayMAC is the stack's own link address (locally administered).
	gatewayMAC = "52:55:0a:00:03:02"
)

// gatewayIP is the guest's default gateway on this NIC (resources/guest/etc/systemd/network).
var gatewayIP = net.IPv4(10, 0, 3, 2).To4()

type network struct {
	s      *stack.Stack
	ch     *channel.Endpoint
	d      *daemon
	dns    *dnsRelay
	cancel context.CancelFunc
	ctx    context.Context
}

// newIPv4Stack is a stack speaking IPv4, ARP, TCP (with SACK) and UDP on one Ethernet NIC whose
// frames are ch's (the tests' guest is one too).
func newIPv4Stack(ch *channel.Endpoint) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return nil, tcpErr("SACK", err)
	}
	if err := s.CreateNIC(nicID, ethernet.New(ch)); err != nil {
		return nil, tcpErr("NIC", err)
	}
	return s, nil
}

func newNetwork(d *daemon) (*network, error) {
	mac, _ := net.ParseMAC(gatewayMAC)
	ch := channel.New(1024, mtu, tcpip.LinkAddress(mac))
	s, err := newIPv4Stack(ch)
	if err != nil {
		return nil, err
	}
	// Promiscuous + spoofing: the stack takes connections to every destination address and
	// answers from it, as the guest's whole network would.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return nil, tcpErr("promiscuous mode", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return nil, tcpErr("spoofing", err)
	}
	addr := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.Address(gatewayIP), PrefixLen: 24}}
	if err := s.AddProtocolAddress(nicID, addr, stack.AddressProperties{}); err != nil {
		return nil, tcpErr("address", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	ctx, cancel := context.WithCancel(context.Background())
	n := &network{s: s, ch: ch, d: d, ctx: ctx, cancel: cancel}
	n.dns = newDNSRelay(d)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, maxHandshakes, n.acceptTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, n.acceptUDP).HandlePacket)
	return n, nil
}

// serve moves frames between QEMU and the stack until the link ends.
func (n *network) serve(c net.Conn) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriterSize(c, 256<<10)
		for {
			pkt := n.ch.ReadContext(n.ctx)
			if pkt.IsNil() {
				return
			}
			err := writeFrame(w, pkt.AsSlices())
			pkt.DecRef()
			// flush when nothing else is waiting: batches bursts, never holds a lone frame
			if err == nil && n.ch.NumQueued() == 0 {
				err = w.Flush()
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	r := bufio.NewReaderSize(c, 256<<10)
	var buf []byte
	var err error
	for {
		var frame []byte
		frame, err = readFrame(r, buf)
		if err != nil {
			break
		}
		buf = frame
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferv2.MakeWithData(frame)})
		n.ch.InjectInbound(0, pkt)
		pkt.DecRef()
	}
	n.cancel()
	<-done
	if err != nil && isEOF(err) {
		return nil
	}
	return err
}

func (n *network) close() {
	n.cancel()
	n.s.Close()
	n.s.Wait()
}

type stackError struct {
	what string
	err  tcpip.Error
}

func (e *stackError) Error() string { return e.what + ": " + e.err.String() }

func tcpErr(what string, err tcpip.Error) error { return &stackError{what, err} }
