import { describe, expect, it } from 'vitest';
import { identityRequest, newMachineId, toNs } from './identity.ts';

const key = { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n', publicKey: 'ssh-ed25519 AAAA root@dev\n' };

describe('identityRequest', () => {
  it('carries everything a new sprite needs in one request: name, machine-id, host key, authorized key, seed, clock', () => {
    const r = identityRequest({ name: 'dev', hostKey: key, authorizedKey: ' ssh-ed25519 BBBB spritely \n', nowMs: 1_700_000_000_123 }, Buffer.from('seed'));
    expect(r).toEqual({
      hostname: 'dev',
      machineId: expect.stringMatching(/^[0-9a-f]{32}$/),
      hostKey: key.privateKey,
      hostKeyPub: 'ssh-ed25519 AAAA root@dev',
      authorizedKeys: 'ssh-ed25519 BBBB spritely\n',
      seed: Buffer.from('seed'),
      timeNs: 1_700_000_000_123_000_000n,
    });
  });

  it('asks for the filesystem to grow only when the disk was grown', () => {
    const base = { name: 'big', hostKey: key, authorizedKey: 'k', nowMs: 0 };
    expect(identityRequest(base).resize).toBeUndefined();
    expect(identityRequest({ ...base, diskBytes: 200 * 2 ** 30 }).resize).toEqual({ device: '/dev/vda', minBytes: 200 * 2 ** 30 });
  });

  it('a new machine-id and seed every time', () => {
    const base = { name: 'a', hostKey: key, authorizedKey: 'k', nowMs: 0 };
    const [a, b] = [identityRequest(base), identityRequest(base)];
    expect(a.machineId).not.toBe(b.machineId);
    expect(a.seed!.equals(b.seed!)).toBe(false);
    expect(a.seed!.length).toBe(64);
  });
});

describe('newMachineId and toNs', () => {
  it('makes 32-hex machine ids', () => {
    expect(newMachineId()).toMatch(/^[0-9a-f]{32}$/);
    expect(newMachineId()).not.toBe(newMachineId());
  });
  it('converts epoch milliseconds to nanoseconds exactly', () => {
    expect(toNs(1)).toBe(1_000_000n);
    expect(toNs(1_700_000_000_000)).toBe(1_700_000_000_000_000_000n);
  });
});
