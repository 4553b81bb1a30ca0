/**
 * Egress throughput inside a sprite: what the isolation costs. The same download (SIZE MiB from an
 * HTTP origin on this machine's own non-loopback address) measured in the guest with curl,
 *   own TCP  — a real sprite's own connection (policy allow=<that address>, the same checks as
 *              `internet`): the guest's second NIC → the host network stack (spritely-net) → the
 *              daemon's netstack link → its egress connector (docs/network.md, "DNS and
 *              transparent TCP: the host network stack");
 *   proxy    — the same sprite, curl pointed at the daemon's HTTP proxy by hand: restricted user
 *              networking → guestfwd → socat → the egress proxy (plain, and as a CONNECT tunnel);
 *   plain    — the same golden state restored into a QEMU with default (unrestricted) user
 *              networking and a default route: slirp connects straight out, as before isolation.
 *   node bin/run-ts.js bench/egress.ts [N=5] [SIZE_MIB=100]
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bootFiles, ImageStore } from '../vm/images/image-store.ts';
import { freeLoopbackPort } from '../vm/net/free-port.ts';
import { buildQemuArgv, type VmSpec } from '../vm/qemu/argv.ts';
import { startNetHelper } from '../vm/qemu/net-helper.ts';
import { killPid, launchQemu } from '../vm/qemu/qemu-process.ts';
import { GUEST_PORTS } from '../vm/driver/driver.ts';
import { GuestAgentLink } from '../vm/guest/guest-agent.ts';
import { QemuMachine } from '../vm/qemu/qemu-machine.ts';
import { startDaemon, testImagesDir } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const SIZE_MIB = Number(process.argv[3] ?? 100);

const addr = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal)?.address;
if (!addr) throw new Error('needs a non-loopback IPv4 address on this machine');
const chunk = crypto.randomBytes(1024 * 1024);
const origin = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': SIZE_MIB * chunk.length });
  let left = SIZE_MIB;
  const pump = () => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
await new Promise<void>((r) => origin.listen(0, addr, r));
const port = (origin.address() as net.AddressInfo).port;
const url = `http://${addr}:${port}/blob`;
const CURL = `curl -sS -o /dev/null -w '%{speed_download} %{size_download}'`;
const PROXY = `-x http://10.0.2.100:3128`;
const mbps = (out: string) => {
  const [speed, size] = out.trim().split(' ').map(Number);
  if (size !== SIZE_MIB * 2 ** 20) throw new Error(`downloaded ${size} bytes instead of ${SIZE_MIB} MiB: ${out}`);
  return speed / 2 ** 20;
};

const d = await startDaemon();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'egb-'));
let plainPid = 0;
try {
  await d.api.call('sprites.create', { name: 'e', network: `allow=${addr}` }, { timeoutMs: 900_000 });
  const own: number[] = [];
  const isolated: number[] = [];
  const tunneled: number[] = [];
  for (let i = 0; i < N; i++) {
    const o = await d.api.call('sprites.exec', { name: 'e', argv: ['sh', '-c', `${CURL} --noproxy '*' ${url}`] }, { timeoutMs: 600_000 });
    if (o.exitCode !== 0) throw new Error(`own-TCP download failed: ${o.stderr}`);
    own.push(mbps(o.stdout));
    const r = await d.api.call('sprites.exec', { name: 'e', argv: ['sh', '-c', `${CURL} ${PROXY} ${url}`] }, { timeoutMs: 600_000 });
    if (r.exitCode !== 0) throw new Error(`proxied download failed: ${r.stderr}`);
    isolated.push(mbps(r.stdout));
    // -p: through a CONNECT tunnel (how HTTPS always goes): the proxy only copies bytes
    const t = await d.api.call('sprites.exec', { name: 'e', argv: ['sh', '-c', `${CURL} ${PROXY} -p ${url}`] }, { timeoutMs: 600_000 });
    if (t.exitCode !== 0) throw new Error(`tunneled download failed: ${t.stderr}`);
    tunneled.push(mbps(t.stdout));
  }
  const sprite = await d.api.call('sprites.get', { name: 'e' });

  // The plain comparison: the sprite's own golden state in a QEMU without restrict=on.
  const diskInfo = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(d.home, 'sprites/e/disk.qcow2')], { encoding: 'utf8' }));
  const goldenDir = path.dirname(diskInfo['full-backing-filename']);
  const image = new ImageStore(testImagesDir(), () => {}).get(sprite.image)!;
  const boot = bootFiles(image);
  const spec: VmSpec = {
    name: 'bench-plain', qemuBinary: 'qemu-system-x86_64', accel: sprite.accel as VmSpec['accel'], memoryMiB: sprite.memoryMiB, cpus: sprite.cpus,
    kernel: image.kernel, initrd: image.initrd, cmdline: image.kernelCmdline, disk: path.join(tmp, 'disk.qcow2'), forwards: [{ hostPort: await freeLoopbackPort(), guestPort: 22 }],
    qmpSocket: path.join(tmp, 'q'), agentSocket: path.join(tmp, 'a'), envSocket: path.join(tmp, 'e'), spritelyAgentSocket: path.join(tmp, 'g'), egressSocket: path.join(tmp, 'x'), serialSocket: path.join(tmp, 's'),
    pidFile: path.join(tmp, 'pid'), incomingStateFile: path.join(goldenDir, 'gold.state'),
    // the golden state has the second NIC: it must be there, on a stack no daemon answers
    netHelperSocket: boot.netstack ? path.join(tmp, 'nic') : undefined,
  };
  if (spec.netHelperSocket) await startNetHelper({ qemuSocket: spec.netHelperSocket, daemonSocket: path.join(tmp, 'nobody'), logFile: path.join(tmp, 'net.log') });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.join(goldenDir, 'gold.qcow2'), '-F', 'qcow2', spec.disk]);
  const argv = buildQemuArgv(spec).map((a) => (a.startsWith('user,id=n0') ? a.replace(',restrict=on', '').replace(/,guestfwd=.*$/, '') : a));
  const { pid } = await launchQemu(argv, { logFile: path.join(tmp, 'qemu.log'), qmpSocket: spec.qmpSocket });
  plainPid = pid;
  const vm = (await QemuMachine.attach({ pid, qmpSocket: spec.qmpSocket, agentSocket: spec.agentSocket, envSocket: spec.envSocket }))!;
  await vm.waitRunning(60_000);
  const agent = await new GuestAgentLink(() => vm.openPort(GUEST_PORTS.control)).ready(60_000);
  // straight out through slirp: no redirect to the (here unconnected) Spritely agent
  await agent.exec('/bin/sh', ['-c', `nft flush ruleset 2>/dev/null; ip route replace default via 10.0.2.2 dev $(ip -o -4 addr show to 10.0.2.15/32 | awk '{print $2}') onlink`]);
  const plain: number[] = [];
  for (let i = 0; i < N; i++) {
    const r = await agent.exec('/bin/sh', ['-c', `${CURL} --noproxy '*' ${url}`], { timeoutMs: 600_000 });
    if (r.exitCode !== 0) throw new Error(`plain download failed: ${r.stderr.toString()}`);
    plain.push(mbps(r.stdout.toString()));
  }
  await vm.quit().catch(() => {});

  const iso = median(isolated);
  const pl = median(plain);
  console.log(`egress download of ${SIZE_MIB} MiB inside a sprite (${sprite.accel}, ${os.cpus().length} cores), median of ${N}:`);
  console.log(`  own TCP (second NIC → host network stack → daemon):            ${median(own).toFixed(1)} MiB/s  [${own.map((x) => x.toFixed(1)).join(', ')}]`);
  console.log(`  proxy (restricted slirp → guestfwd → socat → egress proxy):    ${iso.toFixed(1)} MiB/s  [${isolated.map((x) => x.toFixed(1)).join(', ')}]`);
  console.log(`  isolated, CONNECT tunnel (as HTTPS goes):                      ${median(tunneled).toFixed(1)} MiB/s  [${tunneled.map((x) => x.toFixed(1)).join(', ')}]`);
  console.log(`  plain user networking (slirp straight out):                     ${pl.toFixed(1)} MiB/s  [${plain.map((x) => x.toFixed(1)).join(', ')}]`);
  console.log(`  the sprite's own TCP costs ${(100 * (1 - median(own) / pl)).toFixed(1)}% of plain throughput; the proxy ${(100 * (1 - iso / pl)).toFixed(1)}%`);
} finally {
  if (plainPid) killPid(plainPid);
  await d.cleanup();
  origin.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
