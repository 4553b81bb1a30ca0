import { describe, expect, it } from 'vitest';
import { buildQemuArgv, deviceSignature, qemuOptValue, shellQuote, type VmSpec } from './argv.ts';

const spec: VmSpec = {
  name: 'dev',
  qemuBinary: 'qemu-system-x86_64',
  accel: 'tcg',
  memoryMiB: 512,
  cpus: 1,
  kernel: '/img/vmlinuz',
  initrd: '/img/initrd.img',
  cmdline: 'root=/dev/vda rw console=ttyS0',
  disk: '/data/sprites/dev/disk.qcow2',
  forwards: [
    { hostPort: 40022, guestPort: 22 },
    { hostPort: 40080, guestPort: 8080 },
  ],
  qmpSocket: '/run/a.qmp',
  agentSocket: '/run/a.qga',
  envSocket: '/run/a.env',
  spritelyAgentSocket: '/run/a.agent',
  egressSocket: '/run/a.egress',
  serialSocket: '/run/a.serial',
  pidFile: '/data/sprites/dev/qemu.pid',
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('buildQemuArgv', () => {
  it('builds a q35 TCG machine with a bounded translation cache and no default devices', () => {
    const argv = buildQemuArgv(spec);
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(after(argv, '-machine')).toEqual(['q35']);
    expect(after(argv, '-accel')).toEqual(['tcg,tb-size=64']);
    expect(after(argv, '-cpu')).toEqual(['max']);
    expect(argv).toContain('-nodefaults');
    expect(argv).toContain('-no-user-config');
    expect(argv).toContain('-no-shutdown');
    expect(after(argv, '-m')).toEqual(['512']);
  });

  it('uses the host CPU under KVM and HVF', () => {
    for (const accel of ['kvm', 'hvf'] as const) {
      const argv = buildQemuArgv({ ...spec, accel });
      expect(after(argv, '-accel')).toEqual([accel]);
      expect(after(argv, '-cpu')).toEqual(['host']);
    }
  });

  it('names block nodes (snapshot jobs need them) and binds forwards to loopback only', () => {
    const argv = buildQemuArgv(spec);
    expect(after(argv, '-blockdev')).toEqual([
      'driver=file,filename=/data/sprites/dev/disk.qcow2,node-name=file0,discard=unmap',
      'driver=qcow2,file=file0,node-name=disk0,discard=unmap,detect-zeroes=unmap',
    ]);
    const [netdev] = after(argv, '-netdev');
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:40022-10.0.2.15:22');
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:40080-10.0.2.15:8080');
    expect(netdev).not.toMatch(/hostfwd=tcp::|0\.0\.0\.0/);
  });

  it('restricts user networking: nothing routed out, egress only through the guestfwd to the daemon', () => {
    const [netdev] = after(buildQemuArgv(spec), '-netdev');
    expect(netdev).toMatch(/^user,id=n0,net=10\.0\.2\.0\/24,restrict=on,ipv6=off,/);
    expect(netdev).toContain(",guestfwd=tcp:10.0.2.100:3128-cmd:socat STDIO 'UNIX-CONNECT:/run/a.egress'");
    // a comma in the socket path would end QEMU's option value: it must be doubled
    const [odd] = after(buildQemuArgv({ ...spec, egressSocket: '/run/a,b.egress' }), '-netdev');
    expect(odd).toContain("'UNIX-CONNECT:/run/a,,b.egress'");
  });

  it('gives images with their own network a second NIC on the host network stack, and only them', () => {
    expect(buildQemuArgv(spec).join(' ')).not.toContain('nic1');
    const argv = buildQemuArgv({ ...spec, netHelperSocket: '/run/a,b.nic' });
    const netdevs = argv.flatMap((a, i) => (argv[i - 1] === '-netdev' ? [a] : []));
    expect(netdevs[1]).toBe('stream,id=n1,server=off,addr.type=unix,addr.path=/run/a,,b.nic');
    expect(argv).toContain('virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57,id=nic1');
    // the first NIC (and so the MAC the golden state's guest knows) is unchanged
    expect(argv).toContain('virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,id=nic0');
    // a state saved with the second NIC needs it, one saved without it must not get it
    expect(deviceSignature({ ...spec, netHelperSocket: '/x' }, '7.2.0')).not.toBe(deviceSignature(spec, '7.2.0'));
    expect(deviceSignature({ ...spec, netHelperSocket: '/x' }, '7.2.0')).toBe(deviceSignature({ ...spec, netHelperSocket: '/elsewhere' }, '7.2.0'));
  });

  it('keeps the device signature independent of the per-sprite egress socket', () => {
    expect(deviceSignature({ ...spec, egressSocket: '/elsewhere' }, '7.2.0')).toBe(deviceSignature(spec, '7.2.0'));
  });

  it('exposes the guest agent and spritely-env ports and the serial console on a socket', () => {
    const devices = after(buildQemuArgv(spec), '-device');
    expect(devices.some((d) => d.includes('name=org.qemu.guest_agent.0'))).toBe(true);
    expect(devices.some((d) => d.includes('name=org.spritely.env.0'))).toBe(true);
    expect(devices).toContain('virtserialport,bus=vser0.0,chardev=agent0,name=org.spritely.agent.0,id=agentport');
    const chardevs = after(buildQemuArgv(spec), '-chardev');
    expect(chardevs).toContain('socket,id=agent0,path=/run/a.agent,server=on,wait=off');
    expect(after(buildQemuArgv({ ...spec, spritelyAgentSocket: '/run/x,y' }), '-chardev')).toContain('socket,id=agent0,path=/run/x,,y,server=on,wait=off');
    expect(deviceSignature({ ...spec, spritelyAgentSocket: '/elsewhere' }, '7.2.0')).toBe(deviceSignature(spec, '7.2.0'));
    expect(chardevs.find((c) => c.startsWith('socket,id=ser0'))).toBe('socket,id=ser0,path=/run/a.serial,server=on,wait=off');
  });

  it('leaves the serial log to the daemon: QEMU writes no log file a guest could grow', () => {
    expect(buildQemuArgv(spec).join(' ')).not.toMatch(/logfile|logappend/);
    expect(after(buildQemuArgv(spec), '-serial')).toEqual(['chardev:ser0']);
  });

  it('restores from a state file through a quoted exec: URI, decompressing a .lz4 (or older .zst) one on the fly', () => {
    const argv = buildQemuArgv({ ...spec, incomingStateFile: "/img/it's gold.state" });
    expect(after(argv, '-incoming')).toEqual([`exec:cat '/img/it'\\''s gold.state'`]);
    expect(after(buildQemuArgv({ ...spec, incomingStateFile: '/d/v1.state.lz4' }), '-incoming')).toEqual([`exec:lz4 -dcq -- '/d/v1.state.lz4'`]);
    expect(after(buildQemuArgv({ ...spec, incomingStateFile: '/d/v1.state.zst' }), '-incoming')).toEqual([`exec:zstd -dcq -- '/d/v1.state.zst'`]);
    expect(buildQemuArgv(spec)).not.toContain('-incoming');
  });

  it('has a SCSI controller for snapshot views, and re-creates the views a restored state had as placeholders', () => {
    expect(after(buildQemuArgv(spec), '-device')).toContain('virtio-scsi-pci,id=scsi0');
    const argv = buildQemuArgv({ ...spec, incomingStateFile: '/s', placeholders: [{ name: 'v3', target: 0, lun: 3 }] });
    expect(after(argv, '-blockdev')).toContain('driver=null-co,node-name=svp-v3,size=1073741824,read-zeroes=on');
    expect(after(argv, '-device')).toContain('scsi-hd,bus=scsi0.0,drive=svp-v3,id=sview-v3,scsi-id=0,lun=3');
    expect(deviceSignature({ ...spec, placeholders: [{ name: 'v3', target: 0, lun: 3 }] }, '7.2.0')).toBe(deviceSignature(spec, '7.2.0'));
  });

  it('escapes commas in paths', () => {
    expect(qemuOptValue('/a,b')).toBe('/a,,b');
    const argv = buildQemuArgv({ ...spec, disk: '/x,y/disk.qcow2' });
    expect(after(argv, '-blockdev')[0]).toContain('filename=/x,,y/disk.qcow2,');
    expect(shellQuote('a b')).toBe("'a b'");
  });
});

describe('deviceSignature', () => {
  it('ignores per-VM paths, ports and names', () => {
    const other = { ...spec, name: 'other', disk: '/elsewhere.qcow2', forwards: [{ hostPort: 1234, guestPort: 22 }], qmpSocket: '/x' };
    expect(deviceSignature(other, '7.2.22')).toBe(deviceSignature(spec, '7.2.22'));
  });
  it('changes with anything the RAM state depends on', () => {
    const base = deviceSignature(spec, '7.2.22');
    expect(deviceSignature(spec, '8.0.0')).not.toBe(base);
    expect(deviceSignature({ ...spec, memoryMiB: 1024 }, '7.2.22')).not.toBe(base);
    expect(deviceSignature({ ...spec, cpus: 2 }, '7.2.22')).not.toBe(base);
    expect(deviceSignature({ ...spec, accel: 'kvm' }, '7.2.22')).not.toBe(base);
  });
  // Pinned: a change here means every saved RAM state stops fitting (golden states are rebuilt;
  // sleeping sprites and checkpoint RAM cold-boot once). The SCSI controller for checkpoint views changed it last
  // (before it, the spritely agent's port).
  it('is pinned (a new value means saved states no longer fit: change it on purpose only)', () => {
    const cmdline = 'root=/dev/vda rootfstype=ext4 rw console=ttyS0 quiet loglevel=3 systemd.show_status=0 fsck.mode=skip';
    expect(deviceSignature({ ...spec, cmdline }, '7.2.0')).toBe('59b71327ad42078d');
    expect(deviceSignature({ ...spec, cmdline, accel: 'kvm', memoryMiB: 1024, cpus: 2 }, '8.0.1')).toBe('68f6ac5244d46749');
  });
});
