/**
 * The daemon's API, declared once. Each method names its HTTP route and the zod schemas of its
 * input and output; the server validates with them, the Node client and the renderer take their
 * types from them, and docs/api.md describes them. Streams (events, exec, terminals) are
 * WebSockets whose message shapes are declared here too.
 */
import { z } from 'zod';
import { SPRITE_NAME_PATTERN } from '../names.ts';
import { CHECKPOINT_ID } from '../checkpoints/checkpoint-tree.ts';

/** The API's version: `/v1/…`. Remote hosts must speak the same (vm/hosts/host-compat.ts). */
export const API_VERSION = 'v1';

export const SpriteName = z.string().regex(SPRITE_NAME_PATTERN, 'a sprite name uses a-z, 0-9 and "-", 1-63 characters, not starting or ending with "-"');

export const SpriteState = z.enum(['running', 'sleeping', 'stopped', 'crashed']);

export const Sprite = z.object({
  name: z.string(),
  state: SpriteState,
  operation: z.string().nullable(),
  image: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  uptimeSeconds: z.number().nullable(),
  memoryMiB: z.number(),
  cpus: z.number(),
  diskGiB: z.number(),
  accel: z.string().nullable(),
  pid: z.number().nullable(),
  sshPort: z.number().nullable(),
  lastError: z.string().nullable(),
  urlPort: z.number(),
  idleTimeoutSec: z.number().nullable(),
  network: z.string(),
  usage: z.object({ awakeSeconds: z.number(), cpuSeconds: z.number(), diskBytes: z.number(), lastActiveAt: z.string().nullable() }),
});
export type Sprite = z.infer<typeof Sprite>;

/** `internet`, `none` or `allow=HOST,…`; parsed and checked by the daemon (vm/net/egress-policy.ts). */
export const NetworkPolicyText = z.string().min(1).max(20_000);

/**
 * One destination a sprite was refused (vm/net/refusal-log.ts), the newest burst of a repeat as
 * one row. `name` and `reason` carry guest text, already made inert (safe text).
 */
export const RefusedDestination = z
  .object({
    /** ISO 8601: the last time. */
    at: z.string(),
    protocol: z.enum(['tcp', 'udp', 'dns']),
    /** The host name asked for, or null (an address was asked for). */
    name: z.string().nullable(),
    /** The address asked for or decided on, canonical, or null (refused by name before any lookup). */
    address: z.string().nullable(),
    port: z.number().int().nullable(),
    /** Why, one sentence without a final period. */
    reason: z.string(),
    /** How many times in a row. */
    count: z.number().int().min(1),
  })
  .strict();
export type RefusedDestination = z.infer<typeof RefusedDestination>;

export const CheckpointId = z.string().regex(CHECKPOINT_ID, 'a checkpoint id looks like v1, v2, …');

export const Checkpoint = z.object({
  id: z.string(),
  parent: z.string().nullable(),
  comment: z.string(),
  createdAt: z.string(),
  auto: z.boolean(),
  memory: z.boolean(),
  bytes: z.number(),
  ramBytes: z.number(),
  diskBytes: z.number(),
  pauseMs: z.number(),
  current: z.boolean(),
  /** Shown inside the sprite now, at /.spritely/checkpoints/ID. */
  mounted: z.boolean().optional(),
  /** Its RAM state is stored compressed (done in the background after it is taken). */
  compressed: z.boolean().optional(),
  /** Bytes deleting it would give back (its RAM state and the disk only it holds); null until counted. */
  freeBytes: z.number().nullable().optional(),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

const DiffMeta = z.object({ type: z.string(), size: z.number(), mode: z.string(), uid: z.number(), gid: z.number(), mtime: z.string(), target: z.string().nullable() });
const DiffLine = z.object({ op: z.enum([' ', '-', '+']), text: z.string() });
export const FileDiff = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('text'),
    hunks: z.array(z.object({ aStart: z.number(), aLines: z.number(), bStart: z.number(), bLines: z.number(), lines: z.array(DiffLine) })),
    noNewlineAtEnd: z.object({ before: z.boolean(), after: z.boolean() }),
  }),
  z.object({ kind: z.literal('binary'), beforeBytes: z.number().nullable(), afterBytes: z.number().nullable() }),
  z.object({ kind: z.literal('too-large'), beforeBytes: z.number().nullable(), afterBytes: z.number().nullable() }),
]);
export type FileDiff = z.infer<typeof FileDiff>;

/** One changed path. `path` is chosen by the guest: show it through safe text, never use it as a host path. */
export const DiffEntry = z.object({
  path: z.string(),
  /** The path's exact bytes (base64) when they are not valid UTF-8. */
  pathBytes: z.string().optional(),
  change: z.enum(['added', 'removed', 'modified']),
  /** For `modified`: what differs. */
  changes: z.array(z.enum(['type', 'content', 'size', 'mode', 'owner', 'target'])),
  before: DiffMeta.nullable(),
  after: DiffMeta.nullable(),
  patch: FileDiff.optional(),
});
export type DiffEntry = z.infer<typeof DiffEntry>;

export const DiffReport = z.object({
  name: z.string(),
  from: z.string(),
  to: z.string(),
  entries: z.array(DiffEntry),
  counts: z.object({ added: z.number(), removed: z.number(), modified: z.number() }),
  truncated: z.boolean(),
  changedBytes: z.number().nullable(),
  problems: z.array(z.string()),
  timings: Timings0(),
});
export type DiffReport = z.infer<typeof DiffReport>;

function Timings0() {
  return z.object({ totalMs: z.number() }).catchall(z.number());
}
export const Timings = Timings0();

export const Image = z.object({
  id: z.string(),
  createdAt: z.string(),
  sizeBytes: z.number(),
  diskVirtualBytes: z.number(),
  default: z.boolean(),
});

/** Progress of an image build or a golden boot (`image.progress` events). */
export const ImageProgress = z.object({ image: z.string(), phase: z.string(), message: z.string(), fraction: z.number().optional() });
export type ImageProgress = z.infer<typeof ImageProgress>;

/** A remote host's name: a DNS label (it is part of local URLs, SPRITE.HOST.localhost); `local` is this computer. */
export const HostName = z
  .string()
  .regex(SPRITE_NAME_PATTERN, 'a host name uses a-z, 0-9 and "-", 1-63 characters, not starting or ending with "-"')
  .refine((n) => n !== 'local', '"local" is this computer');

/** connecting: an attempt is under way; unreachable: the last one failed (`reason`), the next starts at `retryAt`. */
export const HostState = z.enum(['connecting', 'connected', 'unreachable']);

/** A remote host as the local daemon sees it (vm/hosts/, docs/hosts.md). */
export const HostStatus = z.object({
  name: z.string(),
  url: z.string(),
  state: HostState,
  /** Why it is unreachable, or what the attempt is doing. */
  reason: z.string().nullable(),
  retryAt: z.string().nullable(),
  since: z.string(),
  /** The server's Spritely version, accelerator and QEMU, once known. */
  version: z.string().nullable(),
  accel: z.string().nullable(),
  accelReason: z.string().nullable(),
  qemuVersion: z.string().nullable(),
  /** The local daemon's ssh master process for this host (one SSH connection per host). */
  sshPid: z.number().nullable(),
});
export type HostStatus = z.infer<typeof HostStatus>;

export const ApiError = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});

const Empty = z.object({}).strict();
const NameParam = z.object({ name: SpriteName }).strict();

export interface MethodDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  http: 'GET' | 'POST' | 'DELETE';
  /** Path with `:name` placeholders filled from the input. */
  path: string;
  input: I;
  output: O;
  summary: string;
}

function method<I extends z.ZodType, O extends z.ZodType>(def: MethodDef<I, O>): MethodDef<I, O> {
  return def;
}

export const methods = {
  'daemon.info': method({
    http: 'GET',
    path: '/v1/info',
    input: Empty,
    output: z.object({
      version: z.string(),
      pid: z.number(),
      home: z.string(),
      accel: z.object({ accel: z.string(), reason: z.string() }).nullable(),
      qemuVersion: z.string().nullable(),
    }),
    summary: 'Daemon version, pid, data dir, chosen accelerator.',
  }),
  'daemon.doctor': method({
    http: 'GET',
    path: '/v1/doctor',
    input: Empty,
    output: z.object({ checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string() })) }),
    summary: 'Checks QEMU, qemu-img, the accelerator, free disk and the data dir.',
  }),
  'daemon.shutdown': method({
    http: 'POST',
    path: '/v1/shutdown',
    input: z.object({ leaveRunning: z.boolean().optional() }).strict(),
    output: z.object({ ok: z.literal(true) }),
    summary: 'Stops the daemon, putting awake sprites to sleep first (`leaveRunning` leaves them running: QEMU outlives the daemon).',
  }),
  'ui.loginUrl': method({
    http: 'POST',
    path: '/v1/ui/login-url',
    input: Empty,
    output: z.object({ url: z.string() }),
    summary: 'A one-time URL (`http://127.0.0.1:PORT/#login=CODE`, two minutes) that logs a browser into the UI. Keep it off command lines: `ui.loginFile` is what `spritely ui` opens.',
  }),
  'ui.loginFile': method({
    http: 'POST',
    path: '/v1/ui/login-file',
    input: Empty,
    output: z.object({ path: z.string(), expiresAt: z.string() }),
    summary: 'A one-time login page written 0600 into the data dir (removed once used or after two minutes): open its path in a browser.',
  }),
  'ui.logoutAll': method({
    http: 'POST',
    path: '/v1/ui/logout-all',
    input: Empty,
    output: z.object({ sessions: z.number().int() }),
    summary: 'Ends every browser login (open windows show "logged out"); returns how many there were.',
  }),
  'images.list': method({ http: 'GET', path: '/v1/images', input: Empty, output: z.array(Image), summary: 'Built images.' }),
  'images.build': method({
    http: 'POST',
    path: '/v1/images/build',
    input: z.object({ force: z.boolean().optional() }).strict(),
    output: Image,
    summary: 'Builds the default image (progress as `image.progress` events).',
  }),
  'sprites.list': method({ http: 'GET', path: '/v1/sprites', input: Empty, output: z.array(Sprite), summary: 'Every sprite.' }),
  'sprites.get': method({ http: 'GET', path: '/v1/sprites/:name', input: NameParam, output: Sprite, summary: 'One sprite.' }),
  'sprites.create': method({
    http: 'POST',
    path: '/v1/sprites',
    input: z
      .object({
        name: SpriteName,
        image: z.string().max(200).optional(),
        memoryMiB: z.number().int().min(128).max(65536).optional(),
        cpus: z.number().int().min(1).max(64).optional(),
        diskGiB: z.number().int().min(100).max(16384).optional(),
        network: NetworkPolicyText.optional(),
      })
      .strict(),
    output: z.object({ sprite: Sprite, timings: Timings }),
    summary: 'Creates a sprite by restoring the golden state (builds the image first if needed).',
  }),
  'sprites.start': method({
    http: 'POST',
    path: '/v1/sprites/:name/start',
    input: NameParam,
    output: z.object({ sprite: Sprite, timings: Timings }),
    summary: 'Boots a stopped or crashed sprite from its disk.',
  }),
  'sprites.stop': method({
    http: 'POST',
    path: '/v1/sprites/:name/stop',
    input: z.object({ name: SpriteName, force: z.boolean().optional() }).strict(),
    output: Sprite,
    summary: 'Powers a sprite off (guest shutdown; `force` syncs and ends QEMU at once).',
  }),
  'sprites.destroy': method({
    http: 'DELETE',
    path: '/v1/sprites/:name',
    input: NameParam,
    output: z.object({ ok: z.literal(true) }),
    summary: 'Removes a sprite and everything of it.',
  }),
  'checkpoints.list': method({
    http: 'GET',
    path: '/v1/sprites/:name/checkpoints',
    input: NameParam,
    output: z.array(Checkpoint),
    summary: 'The checkpoint tree of a sprite (`parent` links; `current` marks what the machine descends from).',
  }),
  'checkpoints.create': method({
    http: 'POST',
    path: '/v1/sprites/:name/checkpoints',
    input: z.object({ name: SpriteName, comment: z.string().max(10_000).optional() }).strict(),
    output: z.object({ checkpoint: Checkpoint, timings: Timings }),
    summary: 'Captures disk + RAM + devices of an awake sprite at one instant (disk only when stopped).',
  }),
  'checkpoints.restore': method({
    http: 'POST',
    path: '/v1/sprites/:name/checkpoints/:id/restore',
    input: z.object({ name: SpriteName, id: CheckpointId, backup: z.boolean().optional() }).strict(),
    output: z.object({ sprite: Sprite, backup: z.string().nullable(), timings: Timings }),
    summary: 'Restores a checkpoint (first taking an automatic one of the current state unless `backup` is false).',
  }),
  'checkpoints.delete': method({
    http: 'DELETE',
    path: '/v1/sprites/:name/checkpoints/:id',
    input: z.object({ name: SpriteName, id: CheckpointId }).strict(),
    output: z.object({ ok: z.literal(true) }),
    summary: 'Deletes a checkpoint; its children are re-parented to its parent.',
  }),
  'checkpoints.diff': method({
    http: 'POST',
    path: '/v1/sprites/:name/diff',
    input: z
      .object({
        name: SpriteName,
        from: CheckpointId,
        to: z.union([CheckpointId, z.literal('now')]).optional(),
        paths: z.array(z.string().min(1).max(4096)).max(100).optional(),
        patch: z.boolean().optional(),
        maxEntries: z.number().int().min(1).max(100_000).optional(),
      })
      .strict(),
    output: DiffReport,
    summary: 'What changed between checkpoint `from` and `to` (a checkpoint, or `now`, the default): added, removed and modified paths (type, content, size, mode, owner, symlink target), limited to `paths` if given; `patch` adds line diffs of text files. Read on the host from the disk snapshots: works asleep or stopped, and the guest runs nothing.',
  }),
  'checkpoints.mount': method({
    http: 'POST',
    path: '/v1/sprites/:name/checkpoints/:id/mount',
    input: z.object({ name: SpriteName, id: CheckpointId }).strict(),
    output: z.object({ path: z.string(), mounted: z.array(z.string()) }),
    summary: 'Shows a checkpoint read-only inside the sprite at /.spritely/checkpoints/ID (waking it; at most a few at once: the least recently used one not in use makes room).',
  }),
  'checkpoints.unmount': method({
    http: 'POST',
    path: '/v1/sprites/:name/checkpoints/:id/unmount',
    input: z.object({ name: SpriteName, id: CheckpointId, force: z.boolean().optional() }).strict(),
    output: z.object({ mounted: z.array(z.string()) }),
    summary: 'Unmounts a checkpoint inside the sprite (refused while something uses it unless `force`: then it goes once nothing does).',
  }),
  'sprites.fork': method({
    http: 'POST',
    path: '/v1/sprites/:name/fork',
    input: z.object({ name: SpriteName, checkpoint: CheckpointId, newName: SpriteName }).strict(),
    output: z.object({ sprite: Sprite, timings: Timings }),
    summary: 'Creates a new, independent sprite (own identity) from any checkpoint of this one.',
  }),
  'sprites.sleep': method({
    http: 'POST',
    path: '/v1/sprites/:name/sleep',
    input: NameParam,
    output: z.object({ sprite: Sprite, timings: Timings }),
    summary: 'Saves RAM + devices to a file and ends QEMU (0 CPU, 0 RAM); `wake` resumes the exact moment.',
  }),
  'sprites.wake': method({
    http: 'POST',
    path: '/v1/sprites/:name/wake',
    input: NameParam,
    output: z.object({ sprite: Sprite, timings: Timings }),
    summary: 'Wakes a sleeping sprite (boots from its disk, and says so in `lastError`, if its RAM state no longer fits).',
  }),
  'sprites.url': method({
    http: 'POST',
    path: '/v1/sprites/:name/url',
    input: z.object({ name: SpriteName, port: z.number().int().min(1).max(65535).optional() }).strict(),
    output: z.object({ local: z.string(), port: z.number() }),
    summary: 'The local URL (http://NAME.localhost:PORT/) that proxies to a port in the sprite (default 8080); `port` changes it.',
  }),
  'sprites.network': method({
    http: 'POST',
    path: '/v1/sprites/:name/network',
    input: z.object({ name: SpriteName, policy: NetworkPolicyText }).strict(),
    output: Sprite,
    summary: 'Sets what the sprite may reach: `internet` (globally routable addresses only: never this computer, its networks, the LAN, link-local or special-purpose ranges), `none`, or `allow=HOST,*.DOMAIN,…`. Applies to the next connection, no restart.',
  }),
  'sprites.netShow': method({
    http: 'GET',
    path: '/v1/sprites/:name/network',
    input: NameParam,
    output: z.object({ name: z.string(), network: z.string(), refused: z.array(RefusedDestination) }).strict(),
    summary: 'The sprite\'s network policy and the last destinations it was refused (up to 32, newest first; a repeat is one row with its `count`), with why: what `spritely net show NAME` prints. The list is kept while the daemon runs, across the sprite\'s restarts; it starts empty when the daemon starts.',
  }),
  'sprites.usage': method({
    http: 'GET',
    path: '/v1/usage',
    input: Empty,
    output: z.array(
      z.object({
        name: z.string(),
        state: SpriteState,
        awakeSeconds: z.number(),
        cpuSeconds: z.number(),
        diskBytes: z.number(),
        lastActiveAt: z.string().nullable(),
        checkpoints: z.number().optional(),
        /** What its checkpoints take: their RAM states and the disk each holds on its own. */
        checkpointBytes: z.number().optional(),
      }),
    ),
    summary: 'Per sprite: awake seconds, CPU seconds, disk bytes (overlay + checkpoints + sleep state), last activity, and its checkpoints (how many, and the bytes they take; `checkpoints.list` has what deleting each would free).',
  }),
  'config.get': method({
    http: 'GET',
    path: '/v1/config',
    input: Empty,
    output: z.lazy(() => Config),
    summary: 'Daemon-wide settings (`memoryLimitMiB`: guest RAM that awake sprites may add up to; `memoryLimitDefault` says it is the default, 80% of host RAM, which `memoryLimitDefaultMiB` gives either way; `warmSpare` and the `spares` waiting now). A sprite\'s own idle timeout is its `idleTimeoutSec` (null: this one).',
  }),
  'config.set': method({
    http: 'POST',
    path: '/v1/config',
    input: z
      .object({
        idleTimeoutSec: z.number().int().min(0).max(30 * 24 * 3600).nullable().optional(),
        memoryLimitMiB: z.number().int().min(0).max(16 * 1024 * 1024).optional(),
        warmSpare: z.boolean().optional(),
        checkpointMounts: z.number().int().min(1).max(16).optional(),
        sprite: SpriteName.optional(),
      })
      .strict(),
    output: z.lazy(() => Config),
    summary: 'Sets the idle timeout (seconds; 0 = never sleep), daemon-wide or for one `sprite` (null: that sprite follows the daemon-wide one again); the memory limit (MiB; 0 = the default); and whether warm spares are kept (`warmSpare`: a machine per used shape restored ahead of time, so a create takes ~0.5 s; each costs its guest RAM while it waits and is given up first when memory is needed); and `checkpointMounts`, how many checkpoints a sprite may have mounted inside it at once (1–16; the next mount unmounts the least recently used).',
  }),
  'relay.connect': method({
    http: 'POST',
    path: '/v1/relay',
    input: z.object({ url: z.string().max(2000), token: z.string().min(8).max(500), ca: z.string().max(100_000).optional() }).strict(),
    output: z.lazy(() => RelayStatus),
    summary: 'Connects to a relay (remembered; reconnects on its own with backoff). `ca`: PEM of a private CA.',
  }),
  'relay.status': method({ http: 'GET', path: '/v1/relay', input: Empty, output: z.lazy(() => RelayStatus), summary: 'The tunnel state and what is published.' }),
  'relay.disconnect': method({ http: 'DELETE', path: '/v1/relay', input: Empty, output: z.object({ ok: z.literal(true) }), summary: 'Disconnects and forgets the relay.' }),
  'sprites.publish': method({
    http: 'POST',
    path: '/v1/sprites/:name/public',
    input: z.object({ name: SpriteName, auth: z.enum(['sprite', 'public']).optional(), off: z.boolean().optional() }).strict(),
    output: z.object({ name: z.string(), url: z.string().nullable(), auth: z.enum(['sprite', 'public']).nullable(), accessToken: z.string().nullable(), live: z.boolean() }),
    summary: 'Publishes the sprite at a public URL through the relay (`auth`: sprite = needs the access token or a share link; public = anyone); `off` unpublishes.',
  }),
  'sprites.share': method({
    http: 'POST',
    path: '/v1/sprites/:name/share',
    input: z.object({ name: SpriteName, ttlSec: z.number().int().min(60).max(30 * 24 * 3600) }).strict(),
    output: z.object({ link: z.string(), expiresAt: z.string() }),
    summary: 'A signed link that opens a `sprite`-mode URL for `ttlSec` seconds (the relay sets a cookie).',
  }),
  'sprites.revokeLinks': method({
    http: 'POST',
    path: '/v1/sprites/:name/share/revoke',
    input: NameParam,
    output: z.object({ name: z.string(), url: z.string(), auth: z.enum(['sprite', 'public']), live: z.boolean() }),
    summary: 'Ends every share link of the sprite and the cookies they set, at once (`live`: false = as soon as the relay reconnects); the URL and its access token stay. Links also end when the sprite is unpublished, published again or destroyed.',
  }),
  'sprites.hostKey': method({
    http: 'GET',
    path: '/v1/sprites/:name/host-key',
    input: NameParam,
    output: z.object({ name: z.string(), hostKey: z.string() }),
    summary: "The sprite's SSH host key (OpenSSH public key line), pinned by the daemon when it made the machine: what `ssh-config` puts in known_hosts.",
  }),
  'sprites.sshConfig': method({
    http: 'GET',
    path: '/v1/sprites/:name/ssh-config',
    input: NameParam,
    output: z.object({ name: z.string(), config: z.string() }),
    summary: "The OpenSSH `Host NAME` block for ~/.ssh/config, exactly what `spritely ssh-config NAME` prints (the daemon first writes the sprite's pinned host key to the known_hosts file the block names).",
  }),
  'sprites.exec': method({
    http: 'POST',
    path: '/v1/sprites/:name/exec',
    input: z
      .object({
        name: SpriteName,
        argv: z.array(z.string().max(65536)).min(1).max(4096),
        stdin: z.string().max(8 * 1024 * 1024).optional(),
        cwd: z.string().max(4096).optional(),
        env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(65536)).optional(),
        timeoutMs: z.number().int().min(1).max(24 * 3600 * 1000).optional(),
        maxOutputBytes: z.number().int().min(0).max(64 * 1024 * 1024).optional(),
      })
      .strict(),
    output: z.object({
      exitCode: z.number().nullable(),
      signal: z.string().nullable(),
      stdout: z.string(),
      stderr: z.string(),
      truncated: z.boolean(),
      timedOut: z.boolean(),
      durationMs: z.number(),
    }),
    summary: 'Runs a command to completion and returns its output (UTF-8; see the exec stream for bytes).',
  }),
  'hosts.list': method({
    http: 'GET',
    path: '/v1/hosts',
    input: Empty,
    output: z.array(HostStatus),
    summary: 'The remote hosts and their state. Every other method of a host is its own path under `/v1/hosts/HOST/` (e.g. `GET /v1/hosts/box/sprites`), streams included: the local daemon passes it to that host\'s daemon over one SSH connection.',
  }),
  'hosts.get': method({ http: 'GET', path: '/v1/hosts/:host', input: z.object({ host: HostName }).strict(), output: HostStatus, summary: 'One remote host.' }),
  'hosts.add': method({
    http: 'POST',
    path: '/v1/hosts',
    input: z
      .object({
        name: HostName,
        url: z.string().max(300),
        identity: z.string().min(1).max(4096).optional(),
        sshConfig: z.string().min(1).max(4096).optional(),
        remoteCommand: z.string().min(1).max(1000).optional(),
        acceptNewHostKey: z.boolean().optional(),
      })
      .strict(),
    output: z.object({
      host: HostStatus,
      checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string() })),
      /** The server's host key as ssh saw it (`ssh-ed25519 SHA256:…`), and whether this add wrote it to known_hosts. */
      hostKey: z.string().nullable(),
      hostKeyAdded: z.boolean(),
    }),
    summary: 'Connects to a server over SSH (`url`: ssh://[user@]server[:port]), checks its Spritely, QEMU, accelerator and disk, and remembers it. An unknown host key is refused unless `acceptNewHostKey`.',
  }),
  'hosts.remove': method({
    http: 'DELETE',
    path: '/v1/hosts/:host',
    input: z.object({ host: HostName }).strict(),
    output: z.object({ ok: z.literal(true) }),
    summary: 'Forgets a host and closes its SSH connection; its sprites keep running there.',
  }),
} as const;

export const Config = z.object({
  idleTimeoutSec: z.number(),
  memoryLimitMiB: z.number(),
  memoryLimitDefault: z.boolean(),
  memoryLimitDefaultMiB: z.number(),
  /** Keep a warm spare per used machine shape, where memory allows. */
  warmSpare: z.boolean(),
  /** Checkpoints a sprite may have mounted inside it at once (/.spritely/checkpoints/ID). */
  checkpointMounts: z.number(),
  /** The warm spares now: machines restored ahead of time, paused, that the next create of their shape takes. */
  spares: z.array(z.object({ image: z.string(), memoryMiB: z.number(), cpus: z.number(), state: z.enum(['preparing', 'ready']), pid: z.number().nullable() })),
});
export type Config = z.infer<typeof Config>;

export const RelayStatus = z.object({
  configured: z.boolean(),
  url: z.string().nullable(),
  /** off: no relay configured; backoff: waiting to retry after a failure (`reason` says which). */
  status: z.enum(['off', 'connecting', 'connected', 'backoff', 'unauthorized', 'closed']),
  reason: z.string().nullable(),
  account: z.string().nullable(),
  published: z.array(z.object({ name: z.string(), url: z.string(), auth: z.enum(['sprite', 'public']) })),
});
export type RelayStatus = z.infer<typeof RelayStatus>;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type MethodInput<M extends MethodName> = z.input<Methods[M]['input']>;
export type MethodOutput<M extends MethodName> = z.infer<Methods[M]['output']>;

// ------------------------------------------------------------------ events (WS /v1/events)

export const DaemonEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('sprite.changed'), sprite: Sprite }),
  z.object({ type: z.literal('sprite.removed'), name: z.string() }),
  z.object({ type: z.literal('checkpoints.changed'), name: z.string(), checkpoints: z.array(Checkpoint) }),
  ImageProgress.extend({ type: z.literal('image.progress') }),
  /** The relay tunnel's state or what is published changed (connecting, connected, backoff, …). */
  z.object({ type: z.literal('relay.changed'), relay: z.lazy(() => RelayStatus) }),
  /** The remote hosts' states (on the local daemon). */
  z.object({ type: z.literal('hosts.changed'), hosts: z.array(HostStatus) }),
  z.object({ type: z.literal('hello'), sprites: z.array(Sprite) }),
]);
export type DaemonEvent = z.infer<typeof DaemonEvent>;

/**
 * On the local daemon's /v1/events: an event of a remote host's daemon, re-emitted with the host it
 * came from (its sprites, checkpoints, image builds, relay). When a host connects, a `hello` with
 * its sprites comes first. Its own `hosts.changed` never crosses (each daemon drives only its own
 * machine).
 */
export const HostEvent = z.object({ type: z.literal('host.event'), host: z.string(), event: DaemonEvent });
export type HostEvent = z.infer<typeof HostEvent>;

/** Every message of the local daemon's /v1/events. */
export const EventMessage = z.union([DaemonEvent, HostEvent]);
export type EventMessage = z.infer<typeof EventMessage>;

// ------------------------------------------------------------------ streams

/**
 * Terminal: WS /v1/sprites/:name/terminal?cols=&rows=&session=
 * Binary frames carry bytes (server→client: output; client→server: input). Text frames are JSON.
 */
export const TerminalClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('resize'), cols: z.number(), rows: z.number() }),
  /** The client has parsed this many more output bytes (credit-based flow control). */
  z.object({ type: z.literal('ack'), bytes: z.number().int().min(0) }),
  /** Ends the session (the shell is hung up), instead of just detaching. */
  z.object({ type: z.literal('close') }),
]);
export const TerminalServerMessage = z.discriminatedUnion('type', [
  /** Sent on attach, before the replay: `replayed` bytes of scrollback follow as binary frames. */
  z.object({ type: z.literal('session'), session: z.string(), replayed: z.number() }),
  z.object({ type: z.literal('exit'), code: z.number().nullable(), signal: z.string().nullable() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type TerminalServerMessage = z.infer<typeof TerminalServerMessage>;

/**
 * Exec: WS /v1/sprites/:name/exec. The client's first text frame is `start`. Binary frames from the
 * server are prefixed with one byte: 1 = stdout, 2 = stderr; from the client, bytes are stdin.
 */
export const ExecClientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('start'),
    argv: z.array(z.string()).min(1),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    tty: z.boolean().optional(),
    cols: z.number().optional(),
    rows: z.number().optional(),
    stdin: z.boolean().optional(),
  }),
  z.object({ type: z.literal('eof') }),
  z.object({ type: z.literal('resize'), cols: z.number(), rows: z.number() }),
  z.object({ type: z.literal('ack'), bytes: z.number().int().min(0) }),
  z.object({ type: z.literal('signal'), signal: z.string().regex(/^[A-Z]+$/) }),
]);
export const ExecServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started') }),
  z.object({ type: z.literal('exit'), code: z.number().nullable(), signal: z.string().nullable() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ExecServerMessage = z.infer<typeof ExecServerMessage>;

export const STREAM_STDOUT = 1;
export const STREAM_STDERR = 2;

/** Fills `:name`-style placeholders of a method path from its input; returns path and the rest. */
export function routeFor(def: MethodDef, input: Record<string, unknown>): { path: string; rest: Record<string, unknown> } {
  const rest = { ...input };
  const path = def.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
    const v = rest[key];
    delete rest[key];
    return encodeURIComponent(String(v));
  });
  return { path, rest };
}

/** Matches a request path against a method's path; returns the captured params or null. */
export function matchRoute(def: MethodDef, path: string): Record<string, string> | null {
  const names: string[] = [];
  const re = new RegExp('^' + def.path.replace(/:([a-zA-Z]+)/g, (_, k: string) => (names.push(k), '([^/]+)')) + '$');
  const m = re.exec(path);
  if (!m) return null;
  const params: Record<string, string> = {};
  names.forEach((n, i) => {
    try {
      params[n] = decodeURIComponent(m[i + 1]);
    } catch {
      params[n] = m[i + 1];
    }
  });
  return params;
}
