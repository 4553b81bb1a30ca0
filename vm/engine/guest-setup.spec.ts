import { describe, expect, it } from 'vitest';
import type { GuestControl, GuestExecResult } from '../guest/guest-control.ts';
import { applyIdentity, diagnoseSsh, setGuestClock } from './guest-setup.ts';

/** A guest whose every program answers with what root there chose to print. */
function hostileGuest(answer: Partial<GuestExecResult>): GuestControl {
  return {
    ping: async () => {},
    shutdown: () => {},
    exec: async () => ({ exitCode: 1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), ...answer }),
  };
}

const ESCAPES = '\x1b]0;owned\x07\x1b[2J\r\u202eevil';

describe('guest output in host messages', () => {
  it('an identity or clock failure quotes the guest inert and bounded', async () => {
    const guest = hostileGuest({ stderr: Buffer.from(`no${ESCAPES}${'x'.repeat(5000)}`) });
    const key = { privateKey: 'k', publicKey: 'p' };
    const err = (await applyIdentity(guest, { name: 'dev', hostKey: key, authorizedKey: 'a', nowMs: 0 }).catch((e) => e)) as Error;
    expect(err.message).toMatch(/^the guest refused its identity \(exit 1\): no\\x1b\]0;owned\\x07\\x1b\[2J\\x0d\\u202eevilx+… \(4\d\d\d more characters\)$/);
    expect(err.message).not.toMatch(/[\x00-\x1f\u202e]/);
    await expect(setGuestClock(guest, 0)).rejects.toThrow(/^setting the guest clock failed: no\\x1b/);
  });

  it('the SSH diagnosis is one inert line', async () => {
    const said = await diagnoseSsh(hostileGuest({ exitCode: 0, stdout: Buffer.from(`spritely-sshd.socket: active\n${ESCAPES}\n`) }));
    expect(said).toBe('spritely-sshd.socket: active | \\x1b]0;owned\\x07\\x1b[2J\\x0d\\u202eevil');
  });
});
