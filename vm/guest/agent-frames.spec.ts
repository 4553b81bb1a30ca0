import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AgentProtocolError, encodeFrame, flushBytes, FrameDecoder, FrameType, HEADER_BYTES, helloFrame, MAX_FRAME_LENGTH, MAX_PAYLOAD, NONCE_BYTES, PROTOCOL_VERSION,
} from './agent-frames.ts';

const nonce = Buffer.alloc(NONCE_BYTES, 7);
function ack(n = nonce, version = PROTOCOL_VERSION, info = '{}'): Buffer {
  const v = Buffer.alloc(2);
  v.writeUInt16BE(version);
  return encodeFrame(FrameType.HelloAck, 0, Buffer.concat([n, v, Buffer.from(info)]));
}

describe('frame encoding', () => {
  it('is u32 length | u8 type | u32 session | payload, big-endian', () => {
    expect([...encodeFrame(0x13, 0x01020304, Buffer.from([1, 0x68]))]).toEqual([0, 0, 0, 7, 0x13, 1, 2, 3, 4, 1, 0x68]);
    expect(encodeFrame(FrameType.Close, 5).length).toBe(HEADER_BYTES);
  });

  it('refuses a payload over the maximum and invalid session ids', () => {
    expect(() => encodeFrame(1, 1, Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(RangeError);
    expect(encodeFrame(1, 1, Buffer.alloc(MAX_PAYLOAD)).length).toBe(HEADER_BYTES + MAX_PAYLOAD);
    expect(() => encodeFrame(1, -1)).toThrow(RangeError);
    expect(() => encodeFrame(1, 2 ** 32)).toThrow(RangeError);
  });

  it('HELLO carries the magic, the nonce, the version and (version 2) the epoch to resume, zeros for none', () => {
    const h = helloFrame(nonce);
    expect(h.readUInt32BE(0)).toBe(5 + 8 + 16 + 2 + 16);
    expect(h.subarray(9, 17).toString()).toBe('SPRITELY');
    expect(h.subarray(17, 33).equals(nonce)).toBe(true);
    expect(h.readUInt16BE(33)).toBe(PROTOCOL_VERSION);
    expect(h.subarray(35).equals(Buffer.alloc(16))).toBe(true);
    const epoch = Buffer.alloc(NONCE_BYTES, 9);
    expect(helloFrame(nonce, PROTOCOL_VERSION, epoch).subarray(35).equals(epoch)).toBe(true);
    // a version 1 HELLO (what a version 1 host sends) has no resume field
    expect(helloFrame(nonce, 1).readUInt32BE(0)).toBe(5 + 8 + 16 + 2);
    expect(() => helloFrame(Buffer.alloc(3))).toThrow(RangeError);
    expect(() => helloFrame(nonce, 2, Buffer.alloc(3))).toThrow(RangeError);
  });

  it('the flush ends any half frame: it is longer than the largest frame and all zeros', () => {
    const f = flushBytes();
    expect(f.length).toBeGreaterThan(4 + MAX_FRAME_LENGTH);
    expect(f.every((b) => b === 0)).toBe(true);
  });
});

describe('FrameDecoder', () => {
  it('parses frames split at every possible point', () => {
    const stream = Buffer.concat([encodeFrame(FrameType.Pong, 0, Buffer.alloc(8, 1)), encodeFrame(FrameType.Data, 9, Buffer.from([1, 2, 3])), encodeFrame(FrameType.Close, 4)]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(frames.map((f) => [f.type, f.session, [...f.payload]])).toEqual([
        [FrameType.Pong, 0, [1, 1, 1, 1, 1, 1, 1, 1]],
        [FrameType.Data, 9, [1, 2, 3]],
        [FrameType.Close, 4, []],
      ]);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('while hunting drops everything before the HELLO_ACK with our nonce, even when it spans chunks', () => {
    const stale = Buffer.concat([crypto.randomBytes(5000), ack(Buffer.alloc(16, 9)), encodeFrame(FrameType.Data, 1, Buffer.from([1, 2]))]);
    const stream = Buffer.concat([stale, ack(), encodeFrame(FrameType.Pong, 0, Buffer.alloc(8))]);
    for (const step of [1, 7, 33, 4096, stream.length]) {
      const d = new FrameDecoder();
      d.expectAck(nonce);
      const frames = [];
      for (let at = 0; at < stream.length; at += step) frames.push(...d.push(stream.subarray(at, at + step)));
      expect(frames.map((f) => f.type)).toEqual([FrameType.HelloAck, FrameType.Pong]);
      expect(d.droppedBytes).toBe(stale.length);
      expect(d.hunting).toBe(false);
    }
  });

  it('refuses a length out of range at once, without waiting for the bytes it claims', () => {
    for (const length of [0, 4, MAX_FRAME_LENGTH + 1, 0xffffffff]) {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32BE(length);
      expect(() => new FrameDecoder().push(h)).toThrow(AgentProtocolError);
    }
    const max = Buffer.alloc(HEADER_BYTES);
    max.writeUInt32BE(MAX_FRAME_LENGTH);
    const d = new FrameDecoder();
    expect(d.push(max)).toEqual([]);
    expect(d.bufferedBytes).toBe(HEADER_BYTES);
  });

  it('gives up hunting after the limit of garbage', () => {
    const d = new FrameDecoder(100_000);
    d.expectAck(nonce);
    expect(() => {
      for (let i = 0; i < 10; i++) d.push(crypto.randomBytes(20_000));
    }).toThrow(/no answer to HELLO/);
    expect(d.bufferedBytes).toBeLessThan(64);
  });

  it('takes linear time: a maximal frame fed one byte at a time', () => {
    const frame = encodeFrame(FrameType.Data, 1, crypto.randomBytes(MAX_PAYLOAD));
    const d = new FrameDecoder();
    const t0 = performance.now();
    const out = [];
    for (let i = 0; i < frame.length; i++) out.push(...d.push(frame.subarray(i, i + 1)));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(out).toHaveLength(1);
    expect(out[0].payload.equals(frame.subarray(HEADER_BYTES))).toBe(true);
  });

  it('random, truncated and oversized input: only frames or AgentProtocolError, never more than one frame held', () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const d = new FrameDecoder(1 << 20);
      if (rnd(2)) d.expectAck(nonce);
      try {
        for (let i = 0; i < 20; i++) {
          const kind = rnd(4);
          const chunk =
            kind === 0 ? crypto.randomBytes(rnd(3000))
            : kind === 1 ? ack().subarray(0, rnd(40))
            : kind === 2 ? encodeFrame(rnd(256), rnd(5), Buffer.alloc(rnd(MAX_PAYLOAD)))
            : Buffer.concat([ack(), encodeFrame(FrameType.Data, 1, Buffer.alloc(rnd(100)))]);
          for (const f of d.push(chunk)) expect(f.payload.length).toBeLessThanOrEqual(MAX_PAYLOAD);
          expect(d.bufferedBytes).toBeLessThanOrEqual(4 + MAX_FRAME_LENGTH + 3000);
        }
      } catch (err) {
        expect(err).toBeInstanceOf(AgentProtocolError);
      }
    }
  });
});
