// Stdin of a session: what the host sent ahead of the process waits in a queue bounded by the
// window the agent granted, one goroutine writes it to the process and grants the host more as
// it goes. A process that closed its stdin still gets its credit back (the bytes are dropped),
// so the host never stalls on it.
package main

import (
	"encoding/binary"
	"sync"
)

// windowStep: the agent grants stdin credit back in steps of at least this much while more input
// is queued (one WINDOW frame per step, not per chunk), and at once when the queue runs empty.
const windowStep = stdinWindow / 4

// feedStdin writes queued input to the process and grants the host more as it goes.
func (s *session) feedStdin() {
	w := s.stdinW
	if s.master != nil {
		w = s.master
	}
	broken := false
	owed := 0
	for {
		chunk, eof, ok := s.stdin.pop(s.done)
		if !ok {
			return
		}
		if chunk != nil {
			if !broken {
				if _, err := w.Write(chunk); err != nil {
					broken = true // the process closed its stdin; what follows is dropped
				}
			}
			owed += len(chunk)
			recycleStdinChunk(chunk)
			if s.closing.Load() || (owed < windowStep && !s.stdin.empty()) {
				continue
			}
			s.stdinCredit.grant(owed)
			win := make([]byte, 5)
			win[0] = streamStdin
			binary.BigEndian.PutUint32(win[1:], uint32(owed))
			owed = 0
			if !s.send(tWindow, win) {
				return
			}
			continue
		}
		if eof {
			if s.master != nil {
				w.Write([]byte{4}) // ^D: end of input for the program reading the terminal
			} else {
				s.stdinW.Close()
			}
			return
		}
	}
}

// stdinChunks recycles the buffers of big stdin chunks (a copy of each DATA frame's bytes: the
// reader's buffer is reused for the next frame).
var stdinChunks = sync.Pool{New: func() any { return make([]byte, MaxPayload) }}

// stdinChunk copies b for the queue.
func stdinChunk(b []byte) []byte {
	if len(b) < 4096 {
		return append([]byte(nil), b...)
	}
	c := stdinChunks.Get().([]byte)[:len(b)]
	copy(c, b)
	return c
}

func recycleStdinChunk(c []byte) {
	if cap(c) == MaxPayload {
		stdinChunks.Put(c[:MaxPayload])
	}
}

// inputQueue holds stdin the host sent ahead of the process (bounded by the stdin window).
type inputQueue struct {
	mu     sync.Mutex
	chunks [][]byte
	eof    bool
	wake   chan struct{}
}

func newInputQueue() *inputQueue { return &inputQueue{wake: make(chan struct{}, 1)} }

func (q *inputQueue) push(b []byte) {
	q.mu.Lock()
	q.chunks = append(q.chunks, b)
	q.mu.Unlock()
	q.signal()
}

func (q *inputQueue) close() {
	q.mu.Lock()
	q.eof = true
	q.mu.Unlock()
	q.signal()
}

func (q *inputQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// empty: no input is queued.
func (q *inputQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.chunks) == 0
}

// pop returns the next chunk, or eof once everything before it was popped; ok is false when
// done is closed first.
func (q *inputQueue) pop(done <-chan struct{}) (chunk []byte, eof bool, ok bool) {
	for {
		q.mu.Lock()
		if len(q.chunks) > 0 {
			c := q.chunks[0]
			q.chunks[0] = nil
			q.chunks = q.chunks[1:]
			q.mu.Unlock()
			return c, false, true
		}
		if q.eof {
			q.mu.Unlock()
			return nil, true, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-done:
			return nil, false, false
		}
	}
}
