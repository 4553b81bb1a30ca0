/**
 * mmdebstrap, the image build's first step: its arguments for a recipe (packages, hooks that lay the
 * guest files over the rootfs, the mirrors), running it, and turning its verbose output into
 * progress phases. Pure where it can be, so the specs pin the invocation and the parsing.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { debianMirrorArgs } from './debian-mirror.ts';
import { run, shellQuote } from './build-commands.ts';
import { listGuestFiles, type Recipe } from './recipe.ts';
import { AGENT_GUEST_PATH } from '../guest/agent-build.ts';

export interface BuildProgress {
  /** checking · resolving · downloading · extracting · installing · customizing · archiving · filesystem · converting · done */
  phase: string;
  message: string;
  /** 0..1 within the phase, when known. */
  fraction?: number;
}

/**
 * mmdebstrap arguments for `recipe`, writing a tarball to `target`, from `mirrors` (see
 * debian-mirror.ts; none: mmdebstrap's own default). The guest's apt keeps the same sources.
 * `agentBinary`: the compiled guest agent, uploaded to AGENT_GUEST_PATH.
 */
export function mmdebstrapArgs(recipe: Recipe, target: string, asRoot: boolean, machineId: string, mirrors: string[] = [], agentBinary?: string): string[] {
  const q = shellQuote;
  const files = listGuestFiles(recipe);
  const modes = files.map((f) => `chmod ${f.executable ? '0755' : '0644'} ${q(f.guestPath)}`);
  const inChroot = (cmds: string[]): string => `chroot "$1" sh -ec ${q(cmds.join('\n'))}`;
  const hooks = [
    // mmdebstrap copied the build host's files in; the recipe's guest files replace them
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
    `sync-in ${q(recipe.guestDir)} /`,
    // the agent's directory exists only if the guest files put something there: make it first
    ...(agentBinary ? [`mkdir -p "$1"${q(path.posix.dirname(AGENT_GUEST_PATH))}`, `upload ${q(agentBinary)} ${AGENT_GUEST_PATH}`] : []),
    inChroot([
      ...files.map((f) => `chown 0:0 ${q(f.guestPath)}`),
      ...modes,
      ...(agentBinary ? [`chown 0:0 ${AGENT_GUEST_PATH}`, `chmod 0755 ${AGENT_GUEST_PATH}`] : []),
      recipe.enableUnits.length ? `systemctl enable --quiet ${recipe.enableUnits.join(' ')}` : 'true',
      recipe.disableUnits.length ? `systemctl disable --quiet ${recipe.disableUnits.join(' ')}` : 'true',
      recipe.maskUnits.length ? `systemctl mask --quiet ${recipe.maskUnits.join(' ')}` : 'true',
    ]),
    `rm -f ${recipe.removePaths.map((p) => `"$1"${q(p)}`).join(' ')}`,
    // a real machine-id (per build; the guest agent's IDENTITY sets each sprite's) keeps the golden boot from
    // being a systemd "first boot" (presets, transient id bind-mounted over /etc/machine-id)
    `printf '%s\\n' ${machineId} > "$1/etc/machine-id"`,
    'chmod 0444 "$1/etc/machine-id"',
    'ln -sf /etc/machine-id "$1/var/lib/dbus/machine-id"',
  ];
  return [
    '--verbose',
    `--mode=${asRoot ? 'root' : 'unshare'}`,
    `--variant=${recipe.variant}`,
    `--include=${recipe.packages.join(',')}`,
    '--aptopt=Acquire::Languages "none"',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--skip=cleanup/reproducible',
    ...hooks.map((h) => `--customize-hook=${h}`),
    recipe.suite,
    target,
    ...mirrors,
  ];
}

export async function runMmdebstrap(
  recipe: Recipe, target: string, asRoot: boolean, log: NodeJS.WritableStream,
  progress: (p: BuildProgress) => void, signal?: AbortSignal, agentBinary?: string,
): Promise<void> {
  const parser = new MmdebstrapProgress(progress);
  const args = mmdebstrapArgs(recipe, target, asRoot, randomBytes(16).toString('hex'), debianMirrorArgs(recipe.suite), agentBinary);
  log.write(`$ mmdebstrap ${args.map(shellQuote).join(' ')}\n`);
  await run('mmdebstrap', args, { log, signal, onLine: (l) => parser.line(l), stdin: 'ignore' });
}

/** Turns mmdebstrap --verbose output (its `I:` lines plus apt and dpkg output) into phases. */
export class MmdebstrapProgress {
  private phase = 'resolving';
  private total = 0;
  private got = 0;
  private unpacked = 0;
  private setUp = 0;

  constructor(private readonly emit: (p: BuildProgress) => void) {}

  line(raw: string): void {
    const l = raw.trim();
    let m: RegExpMatchArray | null;
    if (l.startsWith('I: ')) {
      const msg = l.slice(3);
      const phase =
        /apt-get update/.test(msg) ? 'resolving'
        : /downloading packages/.test(msg) ? 'downloading'
        : /extracting archives/.test(msg) ? 'extracting'
        : /installing (essential|remaining) packages/.test(msg) ? 'installing'
        : /customize-hook/.test(msg) ? 'customizing'
        : /creating tarball|tarball/.test(msg) ? 'archiving'
        : null;
      if (phase) {
        if (phase === 'installing') { this.unpacked = 0; this.setUp = 0; }
        this.phase = phase;
        this.emit({ phase, message: msg });
      }
    } else if ((m = l.match(/^(\d+) upgraded, (\d+) newly installed/))) {
      this.total = Number(m[2]);
      this.got = 0;
      this.unpacked = 0;
      this.setUp = 0;
    } else if (this.total > 0 && (m = l.match(/^Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[/))) {
      this.got++;
      this.emit({ phase: 'downloading', message: `downloading ${m[1]}`, fraction: this.fraction(this.got) });
    } else if ((m = l.match(/^Unpacking (\S+)/))) {
      this.unpacked++;
      this.emit({ phase: 'installing', message: `unpacking ${m[1]}`, fraction: this.fraction((this.unpacked + this.setUp) / 2) });
    } else if ((m = l.match(/^Setting up (\S+)/))) {
      this.setUp++;
      this.emit({ phase: 'installing', message: `setting up ${m[1]}`, fraction: this.fraction((this.unpacked + this.setUp) / 2) });
    } else if ((m = l.match(/^update-initramfs: Generating (\S+)/))) {
      this.emit({ phase: this.phase, message: `generating ${m[1]}` });
    }
  }

  private fraction(done: number): number | undefined {
    return this.total > 0 ? Math.min(1, done / this.total) : undefined;
  }
}

/** `name` → `version` for every installed package in a dpkg status file. */
export function parseDpkgStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const stanza of text.split(/\n\n+/)) {
    const name = stanza.match(/^Package: (.+)$/m)?.[1];
    const version = stanza.match(/^Version: (.+)$/m)?.[1];
    const status = stanza.match(/^Status: (.+)$/m)?.[1];
    if (name && version && status?.endsWith(' installed')) out[name] = version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
