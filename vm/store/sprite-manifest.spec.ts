import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRuntime, writeRuntime } from './sprite-manifest.ts';

describe('runtime file', () => {
  it("keeps the driver's handle as opaque JSON", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-rt-')), 'runtime.json');
    await writeRuntime(file, { startedAt: '2030-01-01T00:00:00Z', accel: 'tcg', sshPort: 1, urlHostPort: 2, machine: { anything: ['the', 'driver', 'wants'] } });
    expect(readRuntime(file)).toEqual({ startedAt: '2030-01-01T00:00:00Z', accel: 'tcg', sshPort: 1, urlHostPort: 2, machine: { anything: ['the', 'driver', 'wants'] } });
    fs.rmSync(path.dirname(file), { recursive: true });
  });

  it('reads a runtime file written before the driver boundary: its fields become the handle', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-rt-'));
    const file = path.join(dir, 'runtime.json');
    const old = { pid: 42, sshPort: 1, startedAt: '2030-01-01T00:00:00Z', accel: 'kvm', qmpSocket: '/r/a.qmp', agentSocket: '/r/a.qga', serialSocket: '/r/a.serial', envSocket: '/r/a.env', urlHostPort: 2 };
    fs.writeFileSync(file, JSON.stringify(old));
    const rt = readRuntime(file)!;
    expect(rt).toMatchObject({ sshPort: 1, accel: 'kvm', urlHostPort: 2 });
    expect(rt.machine).toMatchObject({ pid: 42, qmpSocket: '/r/a.qmp', agentSocket: '/r/a.qga', envSocket: '/r/a.env' });
    fs.writeFileSync(file, '{"torn"');
    expect(readRuntime(file)).toBeNull();
    fs.rmSync(dir, { recursive: true });
  });
});
