/**
 * What a sprite is on disk: its manifest (the durable facts) and its runtime file (facts about the
 * machine of the moment: when it started, its forwarded ports, and the driver's handle to it). Both are validated on read, so a hand-edited
 * or torn file becomes a clear error instead of a strange state.
 */
import { z } from 'zod';
import { readJson, writeJsonAtomic } from './atomic-json.ts';

export const ManifestSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  image: z.string(),
  createdAt: z.string(),
  memoryMiB: z.number().int(),
  cpus: z.number().int(),
  diskGiB: z.number().int(),
  hostKeyPub: z.string(),
  /** Last known power state; a `running` sprite whose machine is gone is `crashed`. */
  status: z.enum(['creating', 'running', 'sleeping', 'stopped', 'crashed']),
  lastError: z.string().nullable().default(null),
  /** Whether the filesystem was already grown to the disk's size. */
  fsGrown: z.boolean().default(false),
  /** While sleeping: the saved RAM state, the device signature it needs and the checkpoint views it was saved with. */
  sleep: z.object({ file: z.string(), signature: z.string(), savedAt: z.string(), attached: z.array(z.string()).optional() }).nullable().default(null),
  /** Idle timeout for this sprite in seconds (null: the daemon-wide setting; 0: never sleep). */
  idleTimeoutSec: z.number().int().min(0).nullable().default(null),
  /** Guest port that the local URL forwards to. */
  urlPort: z.number().int().min(1).max(65535).default(8080),
  /** What the sprite may reach (enforced by the daemon's egress proxy; see vm/net/egress-policy.ts). */
  network: z.object({ mode: z.enum(['internet', 'none', 'allow']), allow: z.array(z.string()) }).default({ mode: 'internet', allow: [] }),
  /** Metering of finished awake periods (the current one is added live). */
  usage: z.object({ awakeSeconds: z.number(), cpuSeconds: z.number(), lastActiveAt: z.string().nullable() }).default({ awakeSeconds: 0, cpuSeconds: 0, lastActiveAt: null }),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const RuntimeSchema = z.preprocess(
  // Runtime files written before the driver boundary held the QEMU handle's fields at the top level.
  (raw) => (raw && typeof raw === 'object' && !('machine' in raw) ? { ...raw, machine: raw } : raw),
  z.object({
    startedAt: z.string(),
    accel: z.string(),
    sshPort: z.number().int(),
    /** Host port forwarded to the guest's URL port. */
    urlHostPort: z.number().int().default(0),
    /** The driver's handle to re-attach to the machine: JSON that only the driver reads. */
    machine: z.unknown(),
    /** Where the machine's guest connections to the egress proxy arrive, when not the sprite's usual path (a warm spare's machine keeps its own). */
    egressSocket: z.string().optional(),
    /** The same for the host network stack's socket (vm/net/netstack-link.ts). */
    netSocket: z.string().optional(),
  }),
);
export type Runtime = z.infer<typeof RuntimeSchema>;

export function readManifest(file: string): Manifest | null {
  const raw = readJson(file);
  if (raw === null) return null;
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} is not a valid sprite manifest: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export async function writeManifest(file: string, m: Manifest): Promise<void> {
  await writeJsonAtomic(file, ManifestSchema.parse(m));
}

export function readRuntime(file: string): Runtime | null {
  try {
    const raw = readJson(file);
    const parsed = RuntimeSchema.safeParse(raw);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function writeRuntime(file: string, r: Runtime): Promise<void> {
  await writeJsonAtomic(file, RuntimeSchema.parse(r));
}
