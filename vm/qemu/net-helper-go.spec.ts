/**
 * Runs the host network stack's own Go tests (resources/net-helper/*_test.go: frames, the daemon's
 * answers, the report rate, and a second netstack playing the guest through the stack to a fake
 * daemon: TCP allowed and refused, DNS on many sockets, other UDP reported) with gofmt and go vet,
 * as part of the unit project. Needs golang-go and golang-gvisor-gvisor-dev (scripts/setup.sh);
 * GOPATH mode on Debian's Go sources, nothing is downloaded.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../resources/net-helper');

function go(args: string[], cmd = 'go'): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: SOURCE_DIR, env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOPROXY: 'off' }, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('host network stack (Go)', () => {
  it('gofmt, go vet and go test pass', async () => {
    const fmt = await go(['-l', '.'], 'gofmt');
    expect(fmt.output, `not gofmt-formatted: ${fmt.output}`).toBe('');
    const vet = await go(['vet', '.']);
    expect(vet.output, vet.output).toBe('');
    const test = await go(['test', '-count=1', '.']);
    expect(test.code, test.output).toBe(0);
    expect(test.output).toMatch(/^ok\s+\S*net-helper/m);
  }, 180_000);
});
