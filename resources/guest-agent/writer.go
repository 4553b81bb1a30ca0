// Bulk output to the host, cheaply under emulation. Every write to the virtio port is a system
// call, a 32 KiB kernel buffer and a notification to QEMU (the Linux driver takes at most 32 KiB
// per write), so the writer hands the port whole 32 KiB pieces of the frame stream while more frames
// are queued, and writes what is left as soon as the queue is empty (no frame waits for company).
// A full DATA frame is exactly two such pieces and is read straight into its wire buffer, which
// is reused once written.
package main

import (
	"encoding/binary"
	"sync"
)

const (
	// dataFrameLen: a full DATA frame on the wire, two port writes.
	dataFrameLen = 2 * writeBatch
	// dataHeader: the frame header and the stream byte before a DATA frame's bytes.
	dataHeader = headerLen + 1
	// readChunk: the most output one DATA frame carries.
	readChunk = dataFrameLen - dataHeader
)

// dataFrames recycles the wire buffers of DATA frames (cleared by the GC when idle).
var dataFrames = sync.Pool{New: func() any { return make([]byte, dataFrameLen) }}

// newDataFrame returns a buffer of dataFrameLen bytes whose bytes after dataHeader are free.
func newDataFrame() []byte { return dataFrames.Get().([]byte)[:dataFrameLen] }

// sealDataFrame writes the header of a DATA frame of n bytes of stream into b and returns it.
func sealDataFrame(b []byte, session uint32, stream byte, n int) []byte {
	binary.BigEndian.PutUint32(b, uint32(5+1+n))
	b[4] = tData
	binary.BigEndian.PutUint32(b[5:], session)
	b[headerLen] = stream
	return b[:dataHeader+n]
}

// recycleFrame takes back a DATA frame's buffer once the writer is done with it (frames handed to
// the writer belong to it).
func recycleFrame(b []byte) {
	if cap(b) == dataFrameLen {
		dataFrames.Put(b[:dataFrameLen])
	}
}

// portWriter joins frames into writes of writeBatch bytes: whole pieces of a frame go straight to
// the port, the rest waits in pending (< writeBatch) until it fills or flush is called.
type portWriter struct {
	tr      transport
	pending []byte
}

func newPortWriter(tr transport) *portWriter {
	return &portWriter{tr: tr, pending: make([]byte, 0, writeBatch)}
}

// add queues b (bytes are written in order; b may be reused once add returns).
func (w *portWriter) add(b []byte) error {
	if len(w.pending) > 0 {
		k := copy(w.pending[len(w.pending):cap(w.pending)], b)
		w.pending = w.pending[:len(w.pending)+k]
		b = b[k:]
		if len(w.pending) < cap(w.pending) {
			return nil
		}
		if err := w.flush(); err != nil {
			return err
		}
	}
	if whole := len(b) - len(b)%writeBatch; whole > 0 {
		if _, err := w.tr.Write(b[:whole]); err != nil {
			return err
		}
		b = b[whole:]
	}
	w.pending = append(w.pending, b...)
	return nil
}

// flush writes what is pending.
func (w *portWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.tr.Write(w.pending)
	w.pending = w.pending[:0]
	return err
}
