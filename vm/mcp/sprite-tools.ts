/**
 * The MCP tools about sprites themselves: list, create (a network only ever narrowed), sleep, wake,
 * URL and fork. `sprites.destroy` is deliberately not among them: only the user deletes machines.
 */
import { z } from 'zod';
import { formatTable } from '../text-format.ts';
import { fmtMs } from './exec-tool.ts';
import { NETWORK_NOTE, SLEEP_NOTE, checkAgentNetwork, checkName, checkpointId, name, ok, spriteInfo, SpriteInfo, type ToolContext } from './tool-kit.ts';

export function registerSpriteTools({ server, daemon, run }: ToolContext): void {
  // ---------------------------------------------------------------- sprites

  server.registerTool(
    'sprite_list',
    {
      title: 'List sprites',
      description: `List the user's sprites (Linux VMs) with their state, size and network policy. ${SLEEP_NOTE} A sleeping sprite is fine to use.`,
      inputSchema: {},
      outputSchema: { sprites: z.array(SpriteInfo) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (_a, extra) =>
      run(extra, 'sprite_list', async () => {
        const sprites = (await daemon.call('sprites.list', {})).map(spriteInfo);
        const text = sprites.length
          ? formatTable(
              ['NAME', 'STATE', 'MEMORY', 'CPUS', 'NETWORK', 'UPTIME'],
              sprites.map((s) => [s.name, s.operation ? `${s.state} (${s.operation})` : s.state, `${s.memoryMiB} MiB`, String(s.cpus), s.network, s.uptimeSeconds === null ? '-' : `${s.uptimeSeconds}s`]),
            )
          : 'No sprites yet. Create one with sprite_create.';
        return ok(text, { sprites });
      }),
  );

  server.registerTool(
    'sprite_create',
    {
      title: 'Create a sprite',
      description: [
        'Create a new sprite: a real Linux VM (Debian 12, root, a 100 GiB sparse disk that persists) on the user\'s machine, running in a few seconds (it restores a saved running machine instead of booting). The very first create on a machine builds the image first (2–4 minutes, once).',
        'Reuse an existing sprite (sprite_list) when the user did not ask for a new one.',
        NETWORK_NOTE,
      ].join(' '),
      inputSchema: {
        name: z.string().describe('Name for the new sprite: a-z, 0-9 and "-", 1–63 characters, not starting or ending with "-".'),
        memory: z.number().int().min(128).max(65536).optional().describe('Guest RAM in MiB (default 512). A size other than the defaults costs a one-time boot of about a minute for that machine shape.'),
        cpus: z.number().int().min(1).max(64).optional().describe('Virtual CPUs (default 1).'),
        network: z.string().min(1).optional().describe('Network policy: "internet" (default), "none", or "allow=HOST,*.DOMAIN,…" with host names only (an agent may narrow the network, never widen it: IP addresses and ranges are refused here; only the user can allow those). Only pass it when the user asked for a restriction.'),
      },
      outputSchema: { sprite: SpriteInfo, totalMs: z.number() },
      annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'sprite_create', async () => {
        const r = await daemon.call('sprites.create', { name: checkName(a.name), memoryMiB: a.memory, cpus: a.cpus, network: a.network === undefined ? undefined : checkAgentNetwork(a.network) });
        const s = spriteInfo(r.sprite);
        return ok(`Created sprite ${s.name} in ${fmtMs(r.timings.totalMs)}: ${s.state}, ${s.memoryMiB} MiB, ${s.cpus} CPU(s), network ${s.network}. Run commands in it with exec.`, { sprite: s, totalMs: r.timings.totalMs });
      }),
  );

  server.registerTool(
    'sprite_sleep',
    {
      title: 'Put a sprite to sleep',
      description: `Put a sprite to sleep now: its RAM is saved to disk and the VM process ends (no CPU, no RAM), running programs freeze. ${SLEEP_NOTE} Rarely needed: idle sprites sleep by themselves.`,
      inputSchema: { name },
      outputSchema: { sprite: SpriteInfo, totalMs: z.number() },
      annotations: { destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'sprite_sleep', async () => {
        const r = await daemon.call('sprites.sleep', { name: checkName(a.name) });
        return ok(`${a.name} is asleep (${fmtMs(r.timings.totalMs)}). It wakes on the next exec, file tool or URL request.`, { sprite: spriteInfo(r.sprite), totalMs: r.timings.totalMs });
      }),
  );

  server.registerTool(
    'sprite_wake',
    {
      title: 'Wake a sprite',
      description: 'Wake a sleeping sprite at the exact moment it went to sleep (programs go on running). Every other tool wakes a sleeping sprite by itself; use this only to have it ready in advance.',
      inputSchema: { name },
      outputSchema: { sprite: SpriteInfo, totalMs: z.number() },
      annotations: { destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'sprite_wake', async () => {
        const r = await daemon.call('sprites.wake', { name: checkName(a.name) });
        const note = r.sprite.lastError ? ` Note: ${r.sprite.lastError}` : '';
        return ok(`${a.name} is awake (${fmtMs(r.timings.totalMs)}).${note}`, { sprite: spriteInfo(r.sprite), totalMs: r.timings.totalMs });
      }),
  );

  server.registerTool(
    'sprite_url',
    {
      title: 'Local URL of a sprite',
      description:
        'The local URL (http://NAME.localhost:PORT/, opens on this computer only) that forwards to a port inside the sprite: 8080 unless `port` is given, which changes the sprite\'s URL port. To show the user a web app: start it inside the sprite listening on 0.0.0.0:PORT and in the background (e.g. exec command "nohup python3 -m http.server 8080 >/tmp/http.log 2>&1 &"), then give the user this URL. A sleeping sprite wakes when the URL is opened. Public URLs are the user\'s decision (`spritely url NAME --public` on the host).',
      inputSchema: { name, port: z.number().int().min(1).max(65535).optional().describe('Port inside the sprite to forward to (default: the current one, initially 8080).') },
      outputSchema: { local: z.string(), port: z.number() },
      annotations: { destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'sprite_url', async () => {
        const r = await daemon.call('sprites.url', { name: checkName(a.name), port: a.port });
        return ok(`${r.local} → port ${r.port} in ${a.name}`, { local: r.local, port: r.port });
      }),
  );

  server.registerTool(
    'sprite_fork',
    {
      title: 'Fork a sprite from a checkpoint',
      description:
        'Create a new, independent sprite from any checkpoint of an existing one (its own hostname, machine-id and SSH keys; disk, RAM and processes as they were at that checkpoint). Use it to try something on a copy, or to run two variants side by side. The source sprite is not changed.',
      inputSchema: { name: name.describe('The source sprite.'), checkpoint: checkpointId, new_name: z.string().describe('Name of the new sprite (a-z, 0-9 and "-").') },
      outputSchema: { sprite: SpriteInfo, totalMs: z.number() },
      annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'sprite_fork', async () => {
        const r = await daemon.call('sprites.fork', { name: checkName(a.name), checkpoint: a.checkpoint, newName: checkName(a.new_name) });
        return ok(`Forked ${a.name}@${a.checkpoint} into ${a.new_name} in ${fmtMs(r.timings.totalMs)} (${r.sprite.state}).`, { sprite: spriteInfo(r.sprite), totalMs: r.timings.totalMs });
      }),
  );
}
