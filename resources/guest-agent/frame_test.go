package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
)

func hello(nonce byte) []byte {
	p := append([]byte(helloMagic), bytes.Repeat([]byte{nonce}, nonceLen)...)
	p = binary.BigEndian.AppendUint16(p, ProtocolVersion)
	p = append(p, make([]byte, nonceLen)...)
	return encodeFrame(tHello, 0, p)
}

func collect(t *testing.T, r *frameReader, data []byte) ([]frame, error) {
	t.Helper()
	var got []frame
	err := r.feed(data, func(f frame) error {
		got = append(got, frame{f.typ, f.session, append([]byte(nil), f.payload...)})
		return nil
	})
	return got, err
}

func TestEncodeLayout(t *testing.T) {
	b := encodeFrame(tData, 7, []byte{1, 'h', 'i'})
	want := []byte{0, 0, 0, 8, tData, 0, 0, 0, 7, 1, 'h', 'i'}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
}

func TestHuntsForHelloThenParsesFramesSplitAnywhere(t *testing.T) {
	stream := append([]byte("stale half frame \x00\x00\x01"), hello(9)...)
	stream = append(stream, encodeFrame(tPing, 0, []byte("12345678"))...)
	stream = append(stream, encodeFrame(tData, 3, bytes.Repeat([]byte{0xff}, 70000-10)[:MaxPayload])...)
	for split := 1; split < len(stream); split += 997 {
		r := newFrameReader()
		a, err1 := collect(t, r, stream[:split])
		b, err2 := collect(t, r, stream[split:])
		if err1 != nil || err2 != nil {
			t.Fatalf("split %d: %v %v", split, err1, err2)
		}
		got := append(a, b...)
		if len(got) != 3 || got[0].typ != tHello || got[1].typ != tPing || got[2].typ != tData || len(got[2].payload) != MaxPayload {
			t.Fatalf("split %d: got %d frames", split, len(got))
		}
		if r.dropped != len("stale half frame \x00\x00\x01") {
			t.Fatalf("dropped %d", r.dropped)
		}
	}
}

func TestLengthOutOfRangeResyncs(t *testing.T) {
	r := newFrameReader()
	if _, err := collect(t, r, hello(1)); err != nil {
		t.Fatal(err)
	}
	bad := []byte{0, 0, 0, 4, tPing, 0, 0, 0, 0}
	_, err := collect(t, r, bad)
	if !errors.Is(err, errMalformed) || !r.hunting {
		t.Fatalf("want errMalformed and hunting, got %v %v", err, r.hunting)
	}
	huge := []byte{0, 1, 0, 7, tData, 0, 0, 0, 1}
	r2 := newFrameReader()
	collect(t, r2, hello(1))
	if _, err := collect(t, r2, huge); !errors.Is(err, errMalformed) {
		t.Fatalf("oversized: %v", err)
	}
	// after resync only a HELLO gets through
	got, _ := collect(t, r2, append(encodeFrame(tPing, 0, make([]byte, 8)), hello(2)...))
	if len(got) != 1 || got[0].typ != tHello {
		t.Fatalf("got %+v", got)
	}
}

func TestHandlerErrorResyncs(t *testing.T) {
	r := newFrameReader()
	n := 0
	err := r.feed(append(hello(1), encodeFrame(tPing, 0, make([]byte, 8))...), func(f frame) error {
		n++
		if f.typ == tHello {
			return errors.New("no")
		}
		return nil
	})
	if err == nil || n != 1 || !r.hunting {
		t.Fatalf("err %v n %d hunting %v", err, n, r.hunting)
	}
}

// Random, truncated and oversized input never panics and never makes the reader hold more than
// one frame plus one read.
func TestRandomInputStaysBounded(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	r := newFrameReader()
	for i := 0; i < 3000; i++ {
		var chunk []byte
		switch rng.Intn(4) {
		case 0:
			chunk = make([]byte, rng.Intn(5000))
			rng.Read(chunk)
		case 1:
			chunk = hello(byte(i))[:rng.Intn(len(hello(0))+1)]
		case 2:
			chunk = encodeFrame(byte(rng.Intn(64)), uint32(rng.Intn(5)), make([]byte, rng.Intn(MaxPayload)))
		default:
			chunk = append(hello(byte(i)), encodeFrame(tData, 1, make([]byte, rng.Intn(100)))...)
		}
		r.feed(chunk, func(frame) error {
			if rng.Intn(3) == 0 {
				return errMalformed
			}
			return nil
		})
		if len(r.buf) > headerLen+MaxPayload+5000 {
			t.Fatalf("reader holds %d bytes", len(r.buf))
		}
	}
}
