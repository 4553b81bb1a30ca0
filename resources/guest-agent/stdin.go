// Stdin of a session: what the host sent ahead of the process waits in a queue bounded by the
// window the agent granted, one goroutine writes it to the process and grants the host more as
// it goes. A process that closed its stdin still gets its credit back (the bytes are dropped),
// so the host never stalls on it.
package main

import (
	"encoding/binary"
	"sync"
)

// feedStdin writes queued input to the process and grants the host more as it goes.
func (s *session) feedStdin() {
	w := s.stdinW
	if s.master != nil {
		w = s.master
	}
	broken := false
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
			if s.closing.Load() {
				continue
			}
			s.stdinCredit.grant(len(chunk))
			win := make([]byte, 5)
			win[0] = streamStdin
			binary.BigEndian.PutUint32(win[1:], uint32(len(chunk)))
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
