/**
 * A data dir, a fake driver, fake I/O and an engine on them, for the engine's specs. Nothing here
 * opens a socket or an SSH connection, and nothing keeps a timer after `cleanup`. A fixture can
 * start a second engine on the same data dir and driver: a daemon restart, the machines still
 * running. Used only by specs (*.spec.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeDriver } from '../driver/fake-driver.ts';
import type { EgressProxyOptions } from '../net/egress-proxy.ts';
import { ImageStore } from '../images/image-store.ts';
import { layout, type Layout } from '../paths.ts';
import type { SshLinkOptions } from '../ssh/ssh-link.ts';
import type { EngineTimeouts } from './context.ts';
import { realIo, type EngineIo, type SshChannels } from './engine-io.ts';
import { Engine } from './engine.ts';

export const FAST_TIMEOUTS: EngineTimeouts = { restoreMs: 1000, guestAfterRestoreMs: 300, coldBootMs: 300, coldBootEmulatedMs: 300, powerOffMs: 300 };

export class FakeSshLink implements SshChannels {
  closed = false;
  readies = 0;
  constructor(readonly opts: SshLinkOptions) {}
  async ready(): Promise<never> {
    this.readies++;
    return {} as never;
  }
  async exec(): Promise<never> {
    throw new Error('no SSH in the engine specs');
  }
  async shell(): Promise<never> {
    throw new Error('no SSH in the engine specs');
  }
  close(): void {
    this.closed = true;
  }
}

export interface FakeIo extends EngineIo {
  clock: { now: number };
  links: FakeSshLink[];
  egress: { opts: EgressProxyOptions; closed: boolean }[];
  idleLoops: (() => void)[];
  hostMiB: number;
}

export function fakeIo(): FakeIo {
  let port = 40_000;
  const io: FakeIo = {
    clock: { now: Date.parse('2030-01-01T00:00:00Z') },
    links: [],
    egress: [],
    idleLoops: [],
    hostMiB: 8192,
    now: () => io.clock.now,
    sshLink: (opts) => {
      const l = new FakeSshLink(opts);
      io.links.push(l);
      return l;
    },
    egressProxy: (opts) => {
      const e = { opts, closed: false };
      io.egress.push(e);
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

export async function makeFixture(opts: { init?: boolean } = {}): Promise<Fixture> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-engine-spec-'));
  // images of its own, whatever SPRITELY_IMAGES_DIR says
  const l2 = { ...layout(home), imagesDir: path.join(home, 'images') };
  writeImage(l2);
  const driver = new FakeDriver();
  const io = fakeIo();
  const logs: string[] = [];
  const make = () => {
    const e = new Engine(l2, { driver, io, timeouts: FAST_TIMEOUTS });
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
