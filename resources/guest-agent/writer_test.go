package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// recordingTransport keeps every write as the port would see it (the driver's 32 KiB cap applies).
type recordingTransport struct{ writes [][]byte }

func (r *recordingTransport) Read([]byte) (int, error) { select {} }
func (r *recordingTransport) hostPresent() bool        { return true }
func (r *recordingTransport) Write(p []byte) (int, error) {
	for len(p) > 0 {
		n := len(p)
		if n > writeBatch {
			n = writeBatch
		}
		r.writes = append(r.writes, append([]byte(nil), p[:n]...))
		p = p[n:]
	}
	return 0, nil
}

func (r *recordingTransport) stream() []byte { return bytes.Join(r.writes, nil) }

func TestDataFrameIsTwoPortWritesAndAValidFrame(t *testing.T) {
	if readChunk+1 > MaxPayload {
		t.Fatalf("a full DATA frame carries %d bytes, more than MaxPayload %d", readChunk+1, MaxPayload)
	}
	b := newDataFrame()
	for i := range b[dataHeader:] {
		b[dataHeader+i] = byte(i)
	}
	f := sealDataFrame(b, 7, streamStderr, readChunk)
	if len(f) != 2*writeBatch {
		t.Fatalf("a full DATA frame is %d bytes on the wire, want %d", len(f), 2*writeBatch)
	}
	want := encodeFrame(tData, 7, append([]byte{streamStderr}, f[dataHeader:]...))
	if !bytes.Equal(f, want) {
		t.Fatal("sealDataFrame does not match encodeFrame")
	}
	var got []frame
	if err := newFrameReaderAfterHello().feed(f, func(fr frame) error { got = append(got, fr); return nil }); err != nil || len(got) != 1 {
		t.Fatalf("the frame does not parse: %v, %d frames", err, len(got))
	}
	short := sealDataFrame(newDataFrame(), 1, streamStdout, 3)
	if len(short) != dataHeader+3 || binary.BigEndian.Uint32(short) != 5+1+3 {
		t.Fatalf("a short DATA frame has length field %d and %d bytes", binary.BigEndian.Uint32(short), len(short))
	}
}

func newFrameReaderAfterHello() *frameReader {
	r := newFrameReader()
	r.hunting = false
	return r
}

func TestPortWriterWritesWholePiecesWhileFramesQueue(t *testing.T) {
	tr := &recordingTransport{}
	w := newPortWriter(tr)
	var sent []byte
	add := func(b []byte) {
		sent = append(sent, b...)
		if err := w.add(b); err != nil {
			t.Fatal(err)
		}
	}
	small := encodeFrame(tData, 1, []byte{streamStderr, 'x'})
	add(small) // pending: nothing written yet
	if len(tr.writes) != 0 {
		t.Fatalf("a small frame was written before the queue emptied: %d writes", len(tr.writes))
	}
	for i := 0; i < 3; i++ {
		add(sealDataFrame(newDataFrame(), 1, streamStdout, readChunk))
	}
	add(small)
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr.stream(), sent) {
		t.Fatal("the port saw other bytes, or in another order")
	}
	for i, b := range tr.writes[:len(tr.writes)-1] {
		if len(b) != writeBatch {
			t.Fatalf("write %d is %d bytes; all but the last should be %d", i, len(b), writeBatch)
		}
	}
	if want := (len(sent) + writeBatch - 1) / writeBatch; len(tr.writes) != want {
		t.Fatalf("%d writes for %d bytes, want %d", len(tr.writes), len(sent), want)
	}
	if err := w.flush(); err != nil || len(tr.writes) != (len(sent)+writeBatch-1)/writeBatch {
		t.Fatal("an empty flush wrote something")
	}
}

func TestPortWriterAlignedFramesGoStraightThrough(t *testing.T) {
	tr := &recordingTransport{}
	w := newPortWriter(tr)
	f := sealDataFrame(newDataFrame(), 1, streamStdout, readChunk)
	if err := w.add(f); err != nil {
		t.Fatal(err)
	}
	if len(tr.writes) != 2 || len(w.pending) != 0 {
		t.Fatalf("a full DATA frame took %d writes and left %d bytes pending", len(tr.writes), len(w.pending))
	}
}
