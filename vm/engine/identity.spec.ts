import { describe, expect, it } from 'vitest';
import { identityPayload, newMachineId } from './identity.ts';

describe('identityPayload', () => {
  it('encodes every field as one KEY BASE64 line', () => {
    const text = identityPayload(
      { hostname: 'dev', machineId: 'ab'.repeat(16), hostKey: '-----BEGIN…\nx\n', hostKeyPub: 'ssh-ed25519 AAAA h', authorizedKeys: 'ssh-ed25519 BBBB c', resize: '/dev/vda', timeNs: 5n },
      Buffer.from('seed'),
    );
    const lines = text.trimEnd().split('\n');
    const map = Object.fromEntries(lines.map((l) => l.split(' ')).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(lines.every((l) => /^[a-z_]+ [A-Za-z0-9+/=]+$/.test(l))).toBe(true);
    expect(map).toEqual({
      hostname: 'dev',
      machine_id: 'ab'.repeat(16),
      host_key: '-----BEGIN…\nx\n',
      host_key_pub: 'ssh-ed25519 AAAA h\n',
      authorized_keys: 'ssh-ed25519 BBBB c\n',
      seed: 'seed',
      resize: '/dev/vda',
      time: '5',
    });
  });
  it('can carry just the clock (after a restore)', () => {
    const keys = identityPayload({ timeNs: 7n }).trim().split('\n').map((l) => l.split(' ')[0]);
    expect(keys).toEqual(['seed', 'time']);
  });
  it('leaves out resize and time when not asked', () => {
    const text = identityPayload({ hostname: 'a', machineId: 'b', hostKey: 'c', hostKeyPub: 'd', authorizedKeys: 'e' });
    expect(text).not.toMatch(/^resize|^time/m);
  });
  it('makes 32-hex machine ids', () => {
    expect(newMachineId()).toMatch(/^[0-9a-f]{32}$/);
    expect(newMachineId()).not.toBe(newMachineId());
  });
});
