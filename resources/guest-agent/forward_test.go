package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// a fake daemon proxy: answers each CONNECT by `answer`, then echoes what comes (200 only).
func fakeForward(t *testing.T, answer func(req *http.Request) string) (addr string, seen chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen = make(chan *http.Request, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				seen <- req
				a := answer(req)
				io.WriteString(c, a)
				if a[9:12] == "200" {
					io.Copy(c, br) // echo, then our EOF follows the guest's
					c.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	return ln.Addr().String(), seen
}

func startForwardAgent(t *testing.T, forward, dst string) (*agent, *logLines) {
	t.Helper()
	tr := &fakeTransport{in: make(chan []byte, 64), out: make(chan []byte, 4096)}
	logs := &logLines{}
	a := newAgent(tr, config{root: t.TempDir(), hostGoneGrace: 50 * time.Millisecond, logf: logs.printf,
		net: netConfig{tcpRelay: "127.0.0.1:0", tcpForward: forward, testOriginalDst: dst}})
	go a.run()
	return a, logs
}

func TestForwardCarriesAConnectionAsATransparentConnect(t *testing.T) {
	addr, seen := fakeForward(t, func(*http.Request) string { return "HTTP/1.1 200 Connection established\r\n\r\n" })
	a, _ := startForwardAgent(t, addr, "192.0.2.7:22")
	c := dialRelay(t, a)
	c.Write([]byte("hello"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo %q %v", got, err)
	}
	req := <-seen
	if req.Method != "CONNECT" || req.RequestURI != "192.0.2.7:22" || req.Header.Get("X-Spritely-Transparent") != "1" {
		t.Fatalf("request %s %s %v", req.Method, req.RequestURI, req.Header)
	}
}

func TestForwardRefusalResetsTheGuestConnectionAndIsLogged(t *testing.T) {
	addr, _ := fakeForward(t, func(*http.Request) string {
		return "HTTP/1.1 403 Forbidden by Spritely network policy\r\nX-Spritely-Error: spritely: 192.0.2.7:22 refused: not in the allow list\x1b\r\nContent-Length: 0\r\n\r\n"
	})
	a, logs := startForwardAgent(t, addr, "192.0.2.7:22")
	// the reset may come before or after the dial completes
	c, err := net.DialTCP("tcp", nil, a.net.relayAddr.(*net.TCPAddr))
	if err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a refusal: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !logs.has("192.0.2.7:22 refused: spritely: 192.0.2.7:22 refused: not in the allow list") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !logs.has("not in the allow list") {
		t.Fatalf("log %q", logs.lines)
	}
}

func TestNoForwardFallsBackToTheChannel(t *testing.T) {
	// nothing listens there: the connection goes over the agent's channel (TCP_CONNECT)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	tr := &fakeTransport{in: make(chan []byte, 64), out: make(chan []byte, 4096)}
	a := newAgent(tr, config{root: t.TempDir(), hostGoneGrace: 50 * time.Millisecond, logf: (&logLines{}).printf,
		net: netConfig{tcpRelay: "127.0.0.1:0", tcpForward: dead, testOriginalDst: "192.0.2.7:80"}})
	go a.run()
	h := &testHost{t: t, tr: tr}
	h.hello(1, ProtocolVersion)
	dialRelay(t, a)
	if f := h.expectNet(tTcpConnect); f.session&hostSessionBit == 0 {
		t.Fatalf("connect on session %x", f.session)
	}
}
