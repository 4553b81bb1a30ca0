package main

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func (h *testHost) open(session uint32, argv ...string) (pid, window int) {
	h.t.Helper()
	b, _ := json.Marshal(map[string]any{"argv": argv})
	h.send(encodeFrame(tExec, session, b))
	var o struct{ Pid, StdinWindow int }
	json.Unmarshal(h.expect(tOpened, session).payload, &o)
	if o.StdinWindow != stdinWindow {
		h.t.Fatalf("OPENED says a stdin window of %d, want %d", o.StdinWindow, stdinWindow)
	}
	return o.Pid, o.StdinWindow
}

func TestStdinCreditComesBackForEveryByteWritten(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	_, window := h.open(3, "wc", "-c")
	piece := append([]byte{streamStdin}, make([]byte, 16*1024)...)
	frames := window / (len(piece) - 1)
	for i := 0; i < frames; i++ {
		h.send(encodeFrame(tData, 3, piece))
	}
	h.send(encodeFrame(tEOF, 3, []byte{streamStdin}))
	granted, windows := 0, 0
	var out []byte
	for {
		f, ok := h.next(5 * time.Second)
		if !ok {
			t.Fatal("no exit")
		}
		switch {
		case f.typ == tWindow:
			n := int(binary.BigEndian.Uint32(f.payload[1:]))
			if f.payload[0] != streamStdin || n <= 0 || n > window {
				t.Fatalf("WINDOW %v", f.payload)
			}
			granted += n
			windows++
		case f.typ == tData:
			out = append(out, f.payload[1:]...)
		case f.typ == tExit:
			if got := strings.TrimSpace(string(out)); got != itoa(window) {
				t.Fatalf("wc says %q, want %d", got, window)
			}
			if granted != window || windows > frames {
				t.Fatalf("granted %d bytes in %d WINDOW frames for %d bytes in %d frames", granted, windows, window, frames)
			}
			return
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// The host may send no more than the window the agent granted: once the process stops reading
// (its pipe full) the agent stops granting, and one byte beyond what is left is a FAULT.
func TestStdinBeyondTheWindowIsRefused(t *testing.T) {
	h := startAgent(t)
	h.hello(1, ProtocolVersion)
	pid, credit := h.open(3, "sleep", "10")
	piece := append([]byte{streamStdin}, make([]byte, 16*1024)...)
	for {
		for credit >= len(piece)-1 {
			h.send(encodeFrame(tData, 3, piece))
			credit -= len(piece) - 1
		}
		f, ok := h.next(300 * time.Millisecond)
		if !ok {
			break // the agent holds a full window and grants nothing more
		}
		if f.typ == tWindow {
			credit += int(binary.BigEndian.Uint32(f.payload[1:]))
		}
	}
	if credit > 0 {
		h.send(encodeFrame(tData, 3, append([]byte{streamStdin}, make([]byte, credit)...)))
	}
	if f, ok := h.next(200 * time.Millisecond); ok {
		t.Fatalf("stdin within the window answered 0x%02x", f.typ)
	}
	h.send(encodeFrame(tData, 3, []byte{streamStdin, 'x'}))
	h.expect(tFault, 0)
	waitDead(t, pid)
}
