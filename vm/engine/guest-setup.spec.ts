import { describe, expect, it } from 'vitest';
import type { GuestControl, GuestExecResult } from '../guest/guest-control.ts';
import { guestSaid, repairAgent } from './guest-setup.ts';

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
  it('is quoted inert and bounded', () => {
    const said = guestSaid(Buffer.from(`no${ESCAPES}${'x'.repeat(5000)}`));
    expect(said).toMatch(/^no\\x1b\]0;owned\\x07\\x1b\[2J\\x0d\\u202eevilx+… \(4\d\d\d more characters\)$/);
    expect(said).not.toMatch(/[\x00-\x1f\u202e]/);
    expect(guestSaid('  ')).toBe('(nothing)');
  });

  it('the agent repair report is one inert line', async () => {
    const said = await repairAgent(hostileGuest({ exitCode: 0, stdout: Buffer.from(`spritely-agent: failed\n${ESCAPES}\n`) }));
    expect(said).toBe('spritely-agent: failed | \\x1b]0;owned\\x07\\x1b[2J\\x0d\\u202eevil');
  });
});
