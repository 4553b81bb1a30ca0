// Credit-based flow control, one counter per stream and direction: the receiver grants bytes
// (the initial window, then WINDOW frames as it consumes), the sender spends them and stops at
// zero. So neither side ever holds more than the window it granted, whatever the other does.
package main

import "sync"

// maxCredit bounds a counter: a peer that grants more than this is malformed.
const maxCredit = 1 << 30

type credit struct {
	mu   sync.Mutex
	n    int
	wake chan struct{} // signalled when n grows
}

func newCredit(initial int) *credit {
	return &credit{n: initial, wake: make(chan struct{}, 1)}
}

// grant adds n bytes; false when the total would exceed maxCredit.
func (c *credit) grant(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < 0 || c.n+n > maxCredit {
		return false
	}
	c.n += n
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits until some credit is available (or done is closed: 0, false) and takes up to max.
func (c *credit) take(max int, done <-chan struct{}) (int, bool) {
	for {
		c.mu.Lock()
		if c.n > 0 {
			n := c.n
			if n > max {
				n = max
			}
			c.n -= n
			c.mu.Unlock()
			return n, true
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-done:
			return 0, false
		}
	}
}

// giveBack returns credit taken but not used (a read returned fewer bytes than taken).
func (c *credit) giveBack(n int) {
	if n > 0 {
		c.grant(n)
	}
}

// spend takes exactly n bytes without waiting; false if fewer are available (the peer sent
// more than it was granted).
func (c *credit) spend(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.n {
		return false
	}
	c.n -= n
	return true
}
