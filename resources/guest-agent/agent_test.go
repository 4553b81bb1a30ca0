package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeTransport is a host the test drives: in carries what the host sends (nil: the host left).
type fakeTransport struct {
	in      chan []byte
	out     chan []byte
	present atomic.Bool
}

func (f *fakeTransport) Read(p []byte) (int, error) {
	b := <-f.in
	if b == nil {
		f.present.Store(false)
		return 0, errHostGone
	}
	f.present.Store(true)
	return copy(p, b), nil
}

func (f *fakeTransport) Write(p []byte) (int, error) {
	f.out <- append([]byte(nil), p...)
	return len(p), nil
}

func (f *fakeTransport) hostPresent() bool { return f.present.Load() }

type testHost struct {
	t   *testing.T
	tr  *fakeTransport
	buf []byte
}

func startAgent(t *testing.T) *testHost {
	tr := &fakeTransport{in: make(chan []byte, 16), out: make(chan []byte, 1024)}
	a := newAgent(tr, config{root: t.TempDir(), hostGoneGrace: 50 * time.Millisecond})
	go a.run()
	return &testHost{t: t, tr: tr}
}

func (h *testHost) send(b []byte) { h.tr.in <- b }

// next returns the next frame, skipping what comes before the ack of nonce when hunting.
func (h *testHost) next(timeout time.Duration) (frame, bool) {
	deadline := time.After(timeout)
	for {
		if len(h.buf) >= headerLen {
			n := int(binary.BigEndian.Uint32(h.buf))
			if len(h.buf) >= 4+n {
				f := frame{h.buf[4], binary.BigEndian.Uint32(h.buf[5:]), append([]byte(nil), h.buf[headerLen:4+n]...)}
				h.buf = h.buf[4+n:]
				return f, true
			}
		}
		select {
		case b := <-h.tr.out:
			h.buf = append(h.buf, b...)
		case <-deadline:
			return frame{}, false
		}
	}
}

func (h *testHost) expect(typ byte, session uint32) frame {
	h.t.Helper()
	for {
		f, ok := h.next(5 * time.Second)
		if !ok {
			h.t.Fatalf("no frame 0x%02x for session %d", typ, session)
		}
		if f.typ == typ && f.session == session {
			return f
		}
		if f.typ == tAnnounce {
			continue
		}
		h.t.Fatalf("got frame 0x%02x session %d (%q), want 0x%02x session %d", f.typ, f.session, f.payload, typ, session)
	}
}

func (h *testHost) hello(nonce byte, version uint16) {
	h.t.Helper()
	h.helloResume(nonce, version, 0)
}

// helloResume says HELLO asking to resume the epoch started by the HELLO with nonce `resume` (0:
// none); returns what the ACK says about the agent.
func (h *testHost) helloResume(nonce byte, version uint16, resume byte) agentInfo {
	h.t.Helper()
	p := append([]byte(helloMagic), bytes.Repeat([]byte{nonce}, nonceLen)...)
	p = binary.BigEndian.AppendUint16(p, version)
	if version >= 2 {
		p = append(p, bytes.Repeat([]byte{resume}, nonceLen)...)
	}
	h.send(encodeFrame(tHello, 0, p))
	ack := h.expect(tHelloAck, 0)
	if !bytes.Equal(ack.payload[:nonceLen], bytes.Repeat([]byte{nonce}, nonceLen)) || binary.BigEndian.Uint16(ack.payload[nonceLen:]) != ProtocolVersion {
		h.t.Fatalf("bad ack %q", ack.payload)
	}
	var info agentInfo
	if err := json.Unmarshal(ack.payload[nonceLen+2:], &info); err != nil {
		h.t.Fatalf("ack info %q: %v", ack.payload[nonceLen+2:], err)
	}
	return info
}

type agentInfo struct {
	Agent    string
	Protocol int
	Resumed  *[]uint32
}

func (h *testHost) exec(session uint32, argv ...string) int {
	h.t.Helper()
	b, _ := json.Marshal(map[string]any{"argv": argv})
	h.send(encodeFrame(tExec, session, b))
	var o struct{ Pid int }
	json.Unmarshal(h.expect(tOpened, session).payload, &o)
	return o.Pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitDead(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if !alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still alive", pid)
}

func TestExecOverTheChannel(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	h.exec(5, "sh", "-c", "echo hi; echo oops >&2; exit 3")
	var out, errb []byte
	for {
		f, ok := h.next(5 * time.Second)
		if !ok {
			t.Fatal("no exit")
		}
		if f.typ == tData && f.payload[0] == streamStdout {
			out = append(out, f.payload[1:]...)
		} else if f.typ == tData && f.payload[0] == streamStderr {
			errb = append(errb, f.payload[1:]...)
		} else if f.typ == tExit {
			if string(f.payload) != `{"code":3,"signal":null,"timedOut":false}` {
				t.Fatalf("exit %s", f.payload)
			}
			break
		}
	}
	if string(out) != "hi\n" || string(errb) != "oops\n" {
		t.Fatalf("out %q err %q", out, errb)
	}
	h.send(encodeFrame(tPing, 0, []byte("abcdefgh")))
	if p := h.expect(tPong, 0); string(p.payload) != "abcdefgh" {
		t.Fatalf("pong %q", p.payload)
	}
}

func TestMalformedFrameFaultsAndOnlyHelloRecovers(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	h.send(encodeFrame(0x7f, 0, nil))
	h.expect(tFault, 0)
	h.send(encodeFrame(tPing, 0, []byte("12345678")))
	if f, ok := h.next(100 * time.Millisecond); ok {
		t.Fatalf("answered 0x%02x while resyncing", f.typ)
	}
	h.hello(2, ProtocolVersion)
	h.send(encodeFrame(tPing, 0, []byte("12345678")))
	h.expect(tPong, 0)
}

func TestOtherVersionIsAnsweredButNotServed(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion+1)
	h.send(encodeFrame(tPing, 0, []byte("12345678")))
	if f, ok := h.next(100 * time.Millisecond); ok {
		t.Fatalf("served a host of another version: 0x%02x", f.typ)
	}
}

func TestNewHelloKillsTheOldEpoch(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	pid := h.exec(1, "sleep", "100")
	h.hello(2, ProtocolVersion)
	waitDead(t, pid)
	h.send(encodeFrame(tPing, 0, []byte("12345678")))
	h.expect(tPong, 0) // nothing of session 1 (no EXIT) comes before it
}

func TestHostGoneKillsSessionsAfterTheGrace(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	pid := h.exec(1, "sleep", "100")
	h.send(nil) // host left, and does not come back
	waitDead(t, pid)

	// a host that is back within the grace keeps its sessions
	h2 := startAgent(t)
	h2.hello(1, ProtocolVersion)
	pid2 := h2.exec(1, "sleep", "100")
	h2.send(nil)
	h2.send(encodeFrame(tPing, 0, []byte("12345678")))
	h2.expect(tPong, 0)
	time.Sleep(150 * time.Millisecond)
	if !alive(pid2) {
		t.Fatal("a session was killed although its host came back")
	}
	syscall.Kill(pid2, syscall.SIGKILL)
}

func TestResumeKeepsTheEpochsSessions(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	pid := h.exec(7, "sh", "-c", "read x; echo got $x")
	h.send(nil) // the machine was saved: the host is gone (and back within the grace)
	info := h.helloResume(2, ProtocolVersion, 1)
	if info.Resumed == nil || len(*info.Resumed) != 1 || (*info.Resumed)[0] != 7 {
		t.Fatalf("resumed %v", info.Resumed)
	}
	if !alive(pid) {
		t.Fatal("the resumed session was killed")
	}
	h.send(encodeFrame(tData, 7, append([]byte{streamStdin}, "more\n"...)))
	for {
		f, ok := h.next(5 * time.Second)
		if !ok {
			t.Fatal("no output after the resume")
		}
		if f.typ == tData {
			if string(f.payload[1:]) != "got more\n" {
				t.Fatalf("output %q", f.payload[1:])
			}
			break
		}
	}
	h.expect(tExit, 7)
	// the epoch is still the one the first HELLO started: a second resume names it again
	pid = h.exec(8, "sleep", "100")
	if info := h.helloResume(3, ProtocolVersion, 1); info.Resumed == nil || len(*info.Resumed) != 1 {
		t.Fatalf("second resume: %v", info.Resumed)
	}
	// a resume that names another epoch is a new epoch: the sessions end, nothing is resumed
	if info := h.helloResume(4, ProtocolVersion, 9); info.Resumed != nil {
		t.Fatalf("resumed a foreign epoch: %v", *info.Resumed)
	}
	waitDead(t, pid)
}

func TestResumeAfterTheGraceIsANewEpoch(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	pid := h.exec(1, "sleep", "100")
	h.send(nil)
	waitDead(t, pid) // the host stayed away past the grace
	if info := h.helloResume(2, ProtocolVersion, 1); info.Resumed != nil {
		t.Fatalf("resumed an ended epoch: %v", *info.Resumed)
	}
}

func TestVersion1HostIsAnsweredButNotServed(t *testing.T) {
	h := startAgent(t)
	h.hello(1, 1) // a 26-byte HELLO, as version 1 hosts send it
	h.send(encodeFrame(tPing, 0, []byte("12345678")))
	if f, ok := h.next(100 * time.Millisecond); ok {
		t.Fatalf("served a version 1 host: 0x%02x", f.typ)
	}
}
