/**
 * The engine's I/O that is not the hypervisor's: egress proxies, network stack links, spritely-env channels, key
 * generation, free ports, host facts, the clock and RAM-state compression. The daemon uses
 * `realIo`; the engine's specs pass fakes, so they bind no socket and leave no timer. (The guest
 * agent's channel is a guest port, which the driver provides: the fake driver's guest speaks the
 * real protocol.)
 */
import os from 'node:os';
import type { Duplex } from 'node:stream';
import { EnvChannel, type EnvHandler } from '../checkpoints/env-channel.ts';
import { lz4Compress, type Compress } from '../checkpoints/ram-compressor.ts';
import { EgressProxy, type EgressProxyOptions } from '../net/egress-proxy.ts';
import { freeLoopbackPort } from '../net/free-port.ts';
import { NetstackLink, type NetstackLinkOptions } from '../net/netstack-link.ts';
import { ensureClientKey, generateEd25519, type KeyPair } from '../ssh/keys.ts';

export interface EnvChannelLike {
  write(text: string): void;
  close(): void;
}

export interface EgressLike {
  listen(): Promise<void>;
  close(): void;
}

export interface EngineIo {
  now(): number;
  egressProxy(opts: EgressProxyOptions): EgressLike;
  /** The daemon's side of a machine's host network stack (vm/net/netstack-link.ts). */
  netstackLink(opts: NetstackLinkOptions): EgressLike;
  envChannel(open: () => Promise<Duplex>, handler: EnvHandler, log: (msg: string) => void): EnvChannelLike;
  /** A new ed25519 key pair (a sprite's SSH host key). */
  hostKey(comment: string): KeyPair;
  /** The installation's SSH client key (made once, kept in the keys dir). */
  clientKey(keysDir: string): KeyPair;
  freePort(): Promise<number>;
  cpuCores(): number;
  hostMemoryMiB(): number;
  /** Runs `fn` every `ms` without keeping the process alive; returns the function that stops it. */
  every(ms: number, fn: () => void): () => void;
  /** Compresses a saved RAM state (lz4); specs pass one they control. */
  compress: Compress;
}

export const realIo: EngineIo = {
  now: () => Date.now(),
  egressProxy: (opts) => new EgressProxy(opts),
  netstackLink: (opts) => new NetstackLink(opts),
  envChannel: (open, handler, log) => new EnvChannel(open, handler, log),
  hostKey: (comment) => generateEd25519(comment),
  clientKey: (keysDir) => ensureClientKey(keysDir),
  freePort: () => freeLoopbackPort(),
  cpuCores: () => os.availableParallelism(),
  hostMemoryMiB: () => os.totalmem() / 2 ** 20,
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
  compress: lz4Compress,
};
