import { describe, expect, it, vi } from 'vitest';
import { FlowGate, OutputBatcher, RingBuffer } from './flow-control.ts';

describe('FlowGate', () => {
  it('pauses above the high mark and resumes only below the low mark', () => {
    const pause = vi.fn();
    const resume = vi.fn();
    const gate = new FlowGate(100, 10, pause, resume);
    const c = {};
    gate.add(c);
    gate.sent(c, 100);
    expect(pause).not.toHaveBeenCalled();
    gate.sent(c, 1);
    expect(pause).toHaveBeenCalledTimes(1);
    gate.sent(c, 50);
    expect(pause).toHaveBeenCalledTimes(1);
    gate.acked(c, 100);
    expect(resume).not.toHaveBeenCalled();
    gate.acked(c, 45);
    expect(resume).toHaveBeenCalledTimes(1);
    expect(gate.isPaused).toBe(false);
  });

  it('follows the slowest consumer, and forgets one that leaves', () => {
    const pause = vi.fn();
    const resume = vi.fn();
    const gate = new FlowGate(100, 10, pause, resume);
    const fast = {};
    const slow = {};
    gate.add(fast);
    gate.add(slow);
    gate.sent(fast, 200);
    gate.sent(slow, 200);
    gate.acked(fast, 200);
    expect(gate.isPaused).toBe(true);
    gate.remove(slow);
    expect(resume).toHaveBeenCalledTimes(1);
  });

  it('never goes negative on over-acks and ignores unknown consumers', () => {
    const gate = new FlowGate(100, 10, vi.fn(), vi.fn());
    const c = {};
    gate.add(c);
    gate.acked(c, 1000);
    gate.sent({}, 1000);
    gate.sent(c, 100);
    expect(gate.isPaused).toBe(false);
  });
});

describe('OutputBatcher', () => {
  it('sends the first chunk after a quiet window at once, joins what follows within the window, and flushes at the size cap', async () => {
    let clock = 1000;
    const out: string[] = [];
    const b = new OutputBatcher((d) => out.push(d.toString()), 5, 8, () => clock);
    b.push(Buffer.from('ab')); // a keystroke's echo: no waiting
    expect(out).toEqual(['ab']);
    b.push(Buffer.from('cd'));
    b.push(Buffer.from('ef'));
    expect(out).toEqual(['ab']);
    await new Promise((r) => setTimeout(r, 15));
    expect(out).toEqual(['ab', 'cdef']);
    clock += 2; // still within the window of that flush: batched
    b.push(Buffer.from('gh'));
    expect(out).toEqual(['ab', 'cdef']);
    b.push(Buffer.from('123456789'));
    expect(out).toEqual(['ab', 'cdef', 'gh123456789']);
    clock += 10; // quiet again
    b.push(Buffer.from('z'));
    expect(out.at(-1)).toBe('z');
  });
});

describe('RingBuffer', () => {
  it('keeps the newest bytes only', () => {
    const r = new RingBuffer(5);
    r.push(Buffer.from('abc'));
    r.push(Buffer.from('defg'));
    expect(r.contents().toString()).toBe('cdefg');
    r.push(Buffer.from('0123456789'));
    expect(r.contents().toString()).toBe('56789');
    expect(r.length).toBe(5);
  });
});
