/**
 * The JSON bodies of the guest agent protocol (docs/guest-agent.md): what the daemon asks for
 * (exec, pty, identity) and the exact shapes it accepts back. Everything the agent sends is
 * hostile input, so each reply is parsed strictly here — zod schemas with no unknown keys, bounded
 * numbers and text with its control characters replaced — before agent-protocol.ts's state machine
 * acts on it. Kept apart from that machine so the wire's vocabulary reads in one place.
 */
import { z } from 'zod';
import type { RelayEvent } from './agent-relay-protocol.ts';

/** Sessions this side keeps open at once (exec, pty and pending requests). */
export const MAX_SESSIONS = 1024;
/** A credit counter may never exceed this: a peer that grants more is malformed. */
export const MAX_CREDIT = 2 ** 30;

/** Text from the guest ends up in logs, API errors and terminals: no control characters. */
const text = (max: number) => z.string().max(max).transform((t) => t.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'));

export const AgentInfo = z.object({
  agent: text(100),
  protocol: z.number().int(),
  pid: z.number().int(),
  maxSessions: z.number().int(),
  maxPayload: z.number().int(),
  /** In the HELLO_ACK of a resumed epoch: the sessions that go on. */
  resumed: z.array(z.number().int().min(1).max(2 ** 31 - 1)).max(MAX_SESSIONS).optional(),
}).strict();
export type AgentInfo = z.output<typeof AgentInfo>;

export const Opened = z.object({ pid: z.number().int().positive().nullable(), stdinWindow: z.number().int().min(0).max(MAX_CREDIT) }).strict();
export const Exit = z.object({ code: z.number().int().nullable(), signal: z.string().regex(/^[A-Za-z0-9 ]{1,32}$/).nullable(), timedOut: z.boolean() }).strict();
export const ErrorReply = z.object({ code: z.string().regex(/^[a-z_]{1,64}$/), message: text(4096) }).strict();
export const Fault = z.object({ message: text(4096) }).strict();
export const IdentityResult = z.object({
  ok: z.boolean(),
  error: text(4096).optional(),
  ms: z.number().min(0),
  steps: z.record(z.string().max(64), z.number().min(0)).optional(),
}).strict();
export type IdentityResult = z.output<typeof IdentityResult>;

export interface ExecRequest {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the process group after this long (ms); 0 or absent: no limit. */
  timeoutMs?: number;
  /** Output window per stream (bytes); default DEFAULT_WINDOW. */
  window?: number;
}

export interface PtyRequest {
  /** Absent: root's login shell. */
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  term?: string;
  cols?: number;
  rows?: number;
  timeoutMs?: number;
  window?: number;
}

/** What one IDENTITY request sets; every field optional. Keys and the seed are made on the host. */
export interface AgentIdentity {
  hostname?: string;
  machineId?: string;
  hostKey?: string;
  hostKeyPub?: string;
  authorizedKeys?: string;
  /** Random bytes for the guest's RNG (1 to 4096). */
  seed?: Buffer;
  /** Unix time in nanoseconds; the guest's clock is set to it. */
  timeNs?: bigint;
  /** Grow this block device's ext4 once it has at least `minBytes`. */
  resize?: { device: string; minBytes: number };
}

/** The IDENTITY request's JSON body (the seed in base64, the time as a decimal string). */
export function identityBody(id: AgentIdentity): object {
  return {
    hostname: id.hostname,
    machineId: id.machineId,
    hostKey: id.hostKey,
    hostKeyPub: id.hostKeyPub,
    authorizedKeys: id.authorizedKeys,
    seed: id.seed?.toString('base64'),
    timeNs: id.timeNs?.toString(),
    resize: id.resize,
  };
}

export type AgentEvent =
  /** The HELLO was answered: a new epoch (after a resume attempt too: every session is gone). */
  | { kind: 'ready'; info: AgentInfo }
  /** The epoch was resumed; `gone` are sessions this side had that the agent no longer has. */
  | { kind: 'resumed'; info: AgentInfo; gone: number[] }
  | { kind: 'pong'; token: string }
  /** The agent (re)started and waits for a HELLO: every session of this epoch is gone. */
  | { kind: 'announce'; info: AgentInfo }
  /** The agent says this side sent something malformed; it resyncs. */
  | { kind: 'fault'; message: string }
  | { kind: 'opened'; session: number; pid: number | null; stdinWindow: number }
  | { kind: 'data'; session: number; stream: 1 | 2; data: Buffer }
  | { kind: 'eof'; session: number; stream: 1 | 2 }
  /** More stdin credit. */
  | { kind: 'window'; session: number; bytes: number }
  | { kind: 'exit'; session: number; code: number | null; signal: string | null; timedOut: boolean }
  | { kind: 'error'; session: number; code: string; message: string }
  | { kind: 'result'; session: number; result: IdentityResult }
  /** The network relay's frames (agent-relay-protocol.ts). */
  | RelayEvent;

/** Parses a payload as JSON of exactly `schema`'s shape; anything else goes to `bad` (which throws). */
export function json<T>(payload: Buffer, schema: z.ZodType<T, any>, bad: (why: string) => never): T {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    bad('payload is not JSON');
  }
  const r = schema.safeParse(value);
  if (!r.success) bad(`unexpected payload: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data!;
}
