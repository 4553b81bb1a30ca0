/**
 * Builds the guest agent (resources/guest-agent, Go, standard library only) from source with the
 * Go toolchain Debian packages (`golang-go`): static (CGO_ENABLED=0), reproducible (`-trimpath`,
 * no build id), for the image's architecture, with module downloads switched off — nothing is
 * fetched, and no prebuilt binary is ever used. The image build copies the result into the guest;
 * tests run the same binary on the host in `--listen` mode.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const AGENT_SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../resources/guest-agent');
/** Where the image puts the binary (the systemd unit runs it from there). */
export const AGENT_GUEST_PATH = '/usr/lib/spritely/spritely-agent';

/** The files the binary is built from (go.mod and non-test .go files), sorted, with their sha256. */
export function listAgentSources(dir = AGENT_SOURCE_DIR): Array<{ path: string; sha256: string }> {
  return readdirSync(dir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || (f.endsWith('.go') && !f.endsWith('_test.go')))
    .sort()
    .map((f) => ({ path: f, sha256: createHash('sha256').update(readFileSync(path.join(dir, f))).digest('hex') }));
}

/** GOARCH (and GOARM) for a Debian architecture name. */
export function goArchFor(dpkgArch: string): { GOARCH: string; GOARM?: string } {
  const map: Record<string, { GOARCH: string; GOARM?: string }> = {
    amd64: { GOARCH: 'amd64' },
    arm64: { GOARCH: 'arm64' },
    armhf: { GOARCH: 'arm', GOARM: '7' },
    armel: { GOARCH: 'arm', GOARM: '5' },
    i386: { GOARCH: '386' },
    ppc64el: { GOARCH: 'ppc64le' },
    riscv64: { GOARCH: 'riscv64' },
    s390x: { GOARCH: 's390x' },
    mips64el: { GOARCH: 'mips64le' },
  };
  const a = map[dpkgArch];
  if (!a) throw new Error(`the guest agent cannot be built for the Debian architecture "${dpkgArch}"`);
  return a;
}

/** Debian's name for this machine's architecture (what mmdebstrap builds by default). */
export function hostDpkgArch(): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', riscv64: 'riscv64', s390x: 's390x' };
  const a = m[process.arch];
  if (!a) throw new Error(`unknown architecture ${process.arch}`);
  return a;
}

export interface BuildAgentOptions {
  out: string;
  dpkgArch?: string;
  sourceDir?: string;
  signal?: AbortSignal;
}

/** Compiles the agent to `out`; fails with the compiler's output, or with how to install Go. */
export async function buildAgent(opts: BuildAgentOptions): Promise<void> {
  const { GOARCH, GOARM } = goArchFor(opts.dpkgArch ?? hostDpkgArch());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CGO_ENABLED: '0',
    GOOS: 'linux',
    GOARCH,
    ...(GOARM ? { GOARM } : {}),
    GOFLAGS: '-mod=mod',
    GOPROXY: 'off',
    GOWORK: 'off',
    GO111MODULE: 'on',
  };
  if (!env.GOCACHE && !env.HOME && !env.XDG_CACHE_HOME) env.GOCACHE = path.join(os.tmpdir(), 'spritely-go-cache');
  await fs.mkdir(path.dirname(opts.out), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    execFile(
      'go',
      ['build', '-trimpath', '-buildvcs=false', '-ldflags=-s -w -buildid=', '-o', opts.out, '.'],
      { cwd: opts.sourceDir ?? AGENT_SOURCE_DIR, env, signal: opts.signal, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve();
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(new Error('cannot build the guest agent: the Go toolchain (`go`) is not installed; install it with: sudo apt-get install golang-go'));
        }
        reject(new Error(`building the guest agent failed: ${(stderr || stdout || err.message).toString().trim()}`));
      },
    );
  });
}
