/**
 * Runs the guest agent's own Go tests (resources/guest-agent/*_test.go: frames and resync, credit,
 * requests, environment, identity, the channel) and `go vet` as part of the unit project, so one
 * `npx vitest run --project unit` covers both halves of the protocol. Needs `golang-go`
 * (scripts/setup.sh installs it); module downloads are off, the agent uses the standard library only.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AGENT_SOURCE_DIR } from './agent-build.ts';

function go(args: string[], cmd = 'go'): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: AGENT_SOURCE_DIR, env: { ...process.env, GOPROXY: 'off', GOFLAGS: '-mod=mod', CGO_ENABLED: '0' }, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('guest agent (Go)', () => {
  it('gofmt, go vet and go test pass', async () => {
    const fmt = await go(['-l', '.'], 'gofmt');
    expect(fmt.output, `not gofmt-formatted: ${fmt.output}`).toBe('');
    const vet = await go(['vet', './...']);
    expect(vet.output, vet.output).toBe('');
    const test = await go(['test', '-count=1', './...']);
    expect(test.code, test.output).toBe(0);
    expect(test.output).toMatch(/^ok\s+spritely\/guest-agent/m);
  }, 180_000);
});
