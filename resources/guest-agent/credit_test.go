package main

import (
	"testing"
	"time"
)

func TestCreditTakeWaitsForGrant(t *testing.T) {
	c := newCredit(0)
	got := make(chan int, 1)
	go func() {
		n, _ := c.take(100, nil)
		got <- n
	}()
	select {
	case n := <-got:
		t.Fatalf("took %d with no credit", n)
	case <-time.After(30 * time.Millisecond):
	}
	c.grant(40)
	if n := <-got; n != 40 {
		t.Fatalf("took %d, want 40", n)
	}
}

func TestCreditTakeCapsAndStopsOnDone(t *testing.T) {
	c := newCredit(500)
	if n, ok := c.take(100, nil); n != 100 || !ok {
		t.Fatalf("took %d", n)
	}
	c.giveBack(30)
	if n, _ := c.take(1000, nil); n != 430 {
		t.Fatalf("took %d, want 430", n)
	}
	done := make(chan struct{})
	close(done)
	if n, ok := c.take(10, done); ok || n != 0 {
		t.Fatalf("took %d after done", n)
	}
}

func TestCreditSpendAndLimit(t *testing.T) {
	c := newCredit(10)
	if !c.spend(10) || c.spend(1) {
		t.Fatal("spend must allow exactly the credit")
	}
	if !c.grant(maxCredit) || c.grant(1) || c.grant(-1) {
		t.Fatal("grant must refuse going over maxCredit and negative grants")
	}
}
