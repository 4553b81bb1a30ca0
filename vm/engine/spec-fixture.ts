/**
 * A data dir, a fake driver, fake I/O and an engine on them, for the engine's specs. Nothing here
 * opens a socket, and nothing keeps a timer after `cleanup`. The guest agent is the fake driver's
 * (the real wire format, the real client). A fixture can
 * start a second engine on the same data dir and driver: a daemon restart, the machines still
 * running. Used only by specs (*.spec.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeDriver, type FakeProcess } from '../driver/fake-driver.ts';
import { FakeAgent } from '../guest/fake-agent.ts';
import type { EgressProxyOptions } from '../net/egress-proxy.ts';
import type { NetstackLinkOptions } from '../net/netstack-link.ts';
import { ImageStore } from '../images/image-store.ts';
import { layout, type Layout } from '../paths.ts';
import type { EngineTimeouts } from './context.ts';
import { realIo, type EngineIo } from './engine-io.ts';
import { Engine } from './engine.ts';

export const FAST_TIMEOUTS: EngineTimeouts = { restoreMs: 1000, guestAfterRestoreMs: 300, coldBootMs: 300, coldBootEmulatedMs: 300, powerOffMs: 300, agentMs: 1500, agentStuckMs: 400 };

export interface FakeIo extends EngineIo {
  clock: { now: number };
  egress: { opts: EgressProxyOptions; closed: boolean }[];
  netLinks: { opts: NetstackLinkOptions; closed: boolean }[];
  idleLoops: (() => void)[];
  hostMiB: number;
  /** While set, compressions wait for it (a spec holds one mid-way). */
  compressGate: Promise<void> | null;
}

export function fakeIo(): FakeIo {
  let port = 40_000;
  const io: FakeIo = {
    clock: { now: Date.parse('2030-01-01T00:00:00Z') },
    egress: [],
    netLinks: [],
    idleLoops: [],
    hostMiB: 8192,
    now: () => io.clock.now,
    egressProxy: (opts) => {
      const e = { opts, closed: false };
      io.egress.push(e);
      return { listen: async () => {}, close: () => void (e.closed = true) };
    },
    netstackLink: (opts) => {
      const e = { opts, closed: false };
      io.netLinks.push(e);
      return { listen: async () => {}, close: () => void (e.closed = true) };
    },
    envChannel: realIo.envChannel,
    hostKey: (comment) => ({ privateKey: `PRIVATE ${comment}`, publicKey: `ssh-ed25519 AAAAfake${port} ${comment}` }),
    clientKey: () => ({ privateKey: 'PRIVATE client', publicKey: 'ssh-ed25519 AAAAclient spritely' }),
    freePort: async () => port++,
    cpuCores: () => 4,
    hostMemoryMiB: () => io.hostMiB,
    every: (_ms, fn) => {
      io.idleLoops.push(fn);
      return () => io.idleLoops.splice(io.idleLoops.indexOf(fn), 1);
    },
    // "compression" that copies: the fake driver restores a .lz4 state as it would the raw one
    compress: async (src, dest, signal) => {
      fs.writeFileSync(dest, ''); // under way: the output exists, incomplete
      const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled'))));
      aborted.catch(() => {}); // (an abort after the gate opened is seen below, not here)
      if (io.compressGate) await Promise.race([io.compressGate, aborted]);
      if (signal.aborted) throw new Error('cancelled');
      fs.copyFileSync(src, dest);
    },
    compressGate: null,
  };
  return io;
}

export interface Fixture {
  home: string;
  layout: Layout;
  driver: FakeDriver;
  io: FakeIo;
  engine: Engine;
  logs: string[];
  /** A new engine on the same data dir and driver, as a restarted daemon (the old one is detached first). */
  restart(): Promise<Engine>;
  cleanup(): Promise<void>;
}

/** Writes a default image the fake driver can boot (image.json and a base disk). */
function writeImage(l: Layout): void {
  const id = new ImageStore(l.imagesDir, () => {}).defaultImageId();
  const dir = path.join(l.imagesDir, id);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) fs.writeFileSync(path.join(dir, f), 'fake');
  fs.writeFileSync(path.join(dir, 'base.qcow2'), JSON.stringify({ format: 'fake-disk', backing: null, virtualBytes: 4 * 2 ** 30, files: {}, snapshots: {} }));
  fs.writeFileSync(path.join(dir, 'image.json'), JSON.stringify({ id, kernelCmdline: 'console=ttyS0', diskVirtualBytes: 4 * 2 ** 30, createdAt: '2030-01-01T00:00:00.000Z' }));
}

/** `warmSpare`: keep warm spares (the setting, saved in config.json); off by default so other specs see only their own machines. */
export async function makeFixture(opts: { init?: boolean; warmSpare?: boolean; compress?: boolean; keepRecentRaw?: number } = {}): Promise<Fixture> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-engine-spec-'));
  // images of its own, whatever SPRITELY_IMAGES_DIR says
  const l2 = { ...layout(home), imagesDir: path.join(home, 'images') };
  writeImage(l2);
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ warmSpare: opts.warmSpare ?? false }));
  const driver = new FakeDriver();
  driver.makeAgent = () => new FakeAgent();
  const io = fakeIo();
  const logs: string[] = [];
  const make = () => {
    const e = new Engine(l2, { driver, io, timeouts: FAST_TIMEOUTS, spareDelayMs: 0, compressRam: opts.compress ?? false, keepRecentRaw: opts.keepRecentRaw ?? 0 });
    e.on('log', (m) => logs.push(m));
    return e;
  };
  const f: Fixture = {
    home,
    layout: l2,
    driver,
    io,
    engine: make(),
    logs,
    async restart() {
      f.engine.detachAll();
      f.engine = make();
      await f.engine.init();
      return f.engine;
    },
    async cleanup() {
      for (const p of [...driver.processes.values()]) p.end('quit');
      f.engine.detachAll();
      await new Promise((r) => setImmediate(r));
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(l2.runDir, { recursive: true, force: true });
    },
  };
  if (opts.init !== false) await f.engine.init();
  return f;
}

/** The fake spritely agent in a fake machine's guest. */
export function agentOf(p: FakeProcess): FakeAgent {
  return p.guest.agent as FakeAgent;
}
