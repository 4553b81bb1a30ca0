/**
 * Boot check for the default guest image: proves that an image built by build-image.ts honours
 * the guest contract the engine relies on (docs/image.md), with a plain QEMU command line and no
 * engine code in between — so when the engine misbehaves, this tells whether the image is at fault.
 *
 *   node bin/run-ts.js bench/boot-check.ts <imagesDir> [--apt-update] [--keep] [--image=ID] [--script=FILE]
 *
 * Builds the image if needed, cold-boots it under TCG on a fresh overlay, waits for
 * qemu-guest-agent, runs apply-identity through guest-exec (timed), then checks ssh with the
 * injected client and host keys, outbound HTTP, online growth after block_resize, and prints
 * timings. Exits non-zero if any check fails. Only ever kills the QEMU it started.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildImage, imagePaths, type ImageInfo } from '../vm/images/build-image.ts';
import { debianMirrorArgs } from '../vm/images/debian-mirror.ts';
import { qemuDisks } from '../vm/qemu/qemu-img.ts';

const execFileP = promisify(execFile);
const GiB = 1024 ** 3;
const RESIZED_BYTES = 100 * GiB;
/** guest-exec-status poll interval: each poll wakes the agent, which competes with the command for the one vCPU. */
const POLL_MS = Number(process.env.BOOT_CHECK_POLL_MS ?? 20);
const TRACE_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'SPRITELY_TRACE=1'];

/** Newline-delimited JSON over a unix socket: enough for QMP and qemu-guest-agent. */
class JsonSocket {
  private buf = '';
  private waiters: Array<(msg: any) => void> = [];
  private queue: any[] = [];
  constructor(private readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      // qemu-guest-agent prefixes guest-sync-delimited replies with 0xFF
      this.buf += chunk.replace(/\xff/g, '');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let msg: any;
        try { msg = JSON.parse(line); } catch { continue; }
        const w = this.waiters.shift();
        if (w) w(msg); else this.queue.push(msg);
      }
    });
  }
  static connect(file: string): Promise<JsonSocket> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(file);
      s.once('connect', () => resolve(new JsonSocket(s)));
      s.once('error', reject);
    });
  }
  send(obj: unknown, raw = ''): void { this.sock.write(raw + JSON.stringify(obj) + '\n'); }
  next(timeoutMs: number): Promise<any> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error('timeout waiting for a reply'));
      }, timeoutMs);
      const done = (m: any): void => { clearTimeout(t); resolve(m); };
      this.waiters.push(done);
    });
  }
  close(): void { this.sock.destroy(); }
}

async function qmpCommand(qmp: JsonSocket, execute: string, args?: object): Promise<any> {
  qmp.send({ execute, ...(args ? { arguments: args } : {}) });
  for (;;) {
    const msg = await qmp.next(30_000);
    if ('event' in msg) continue;
    if (msg.error) throw new Error(`QMP ${execute}: ${msg.error.desc}`);
    return msg.return;
  }
}

/** Repeats guest-sync-delimited until the agent answers the latest id (stale ones are skipped). */
async function waitForAgent(file: string, deadline: number): Promise<JsonSocket> {
  let qga: JsonSocket | null = null;
  while (!qga) {
    try { qga = await JsonSocket.connect(file); } catch { await sleep(100); }
    if (Date.now() > deadline) throw new Error('guest agent socket never appeared');
  }
  let id = 0;
  for (;;) {
    if (Date.now() > deadline) throw new Error('qemu-guest-agent did not answer');
    id = Math.floor(Math.random() * 1e9);
    qga.send({ execute: 'guest-sync-delimited', arguments: { id } }, '\xff');
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      const msg = await qga.next(until - Date.now()).catch(() => null);
      if (msg?.return === id) return qga;
    }
  }
}

async function qga(agent: JsonSocket, execute: string, args?: object, timeoutMs = 30_000): Promise<any> {
  agent.send({ execute, ...(args ? { arguments: args } : {}) });
  const msg = await agent.next(timeoutMs);
  if (msg.error) throw new Error(`guest agent ${execute}: ${msg.error.desc}`);
  return msg.return;
}

interface ExecResult { exitcode: number; stdout: string; stderr: string; ms: number }

/** guest-exec + polling guest-exec-status; `stdin` goes through input-data. */
async function guestExec(agent: JsonSocket, argv: string[], stdin?: string, timeoutMs = 120_000, env?: string[]): Promise<ExecResult> {
  const t0 = performance.now();
  const { pid } = await qga(agent, 'guest-exec', {
    path: argv[0], arg: argv.slice(1), 'capture-output': true, ...(env ? { env } : {}),
    ...(stdin !== undefined ? { 'input-data': Buffer.from(stdin).toString('base64') } : {}),
  });
  for (;;) {
    const st = await qga(agent, 'guest-exec-status', { pid });
    if (st.exited) {
      return {
        exitcode: st.exitcode ?? -1,
        stdout: Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8'),
        stderr: Buffer.from(st['err-data'] ?? '', 'base64').toString('utf8'),
        ms: performance.now() - t0,
      };
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`guest-exec ${argv.join(' ')} timed out`);
    await sleep(POLL_MS);
  }
}

function identityInput(fields: Record<string, string | Buffer>): string {
  return Object.entries(fields).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}\n`).join('');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const imagesDir = args.find((a) => !a.startsWith('--'));
  if (!imagesDir) {
    console.error('usage: boot-check.ts <imagesDir> [--apt-update] [--keep] [--image=ID] [--script=apply-identity]');
    return 2;
  }
  // --image=ID: check an already built image (e.g. with --script=FILE while iterating on the script)
  const pinned = args.find((a) => a.startsWith('--image='))?.slice('--image='.length);
  const info: ImageInfo = pinned
    ? JSON.parse(readFileSync(imagePaths(path.resolve(imagesDir), pinned).info, 'utf8'))
    : await buildImage({
        imagesDir: path.resolve(imagesDir),
        toDisk: (raw, disk) => qemuDisks.importRaw(raw, disk),
        onProgress: (p) => { if (p.fraction === undefined || p.phase === 'done') console.log(`[build] ${p.phase}: ${p.message}`); },
      });
  const img = imagePaths(path.resolve(imagesDir), info.id);
  const work = mkdtempSync(path.join(os.tmpdir(), 'spritely-boot-check-'));
  const results: Array<{ check: string; ok: boolean; detail?: string }> = [];
  const timings: Record<string, number> = {};
  const check = (name: string, ok: boolean, detail?: string): void => {
    results.push({ check: name, ok, detail });
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  };

  let qemu: ChildProcess | null = null;
  let qmp: JsonSocket | null = null;
  let agent: JsonSocket | null = null;
  try {
    // keys: the client's, and the host key the sprite should present
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'boot-check', '-f', path.join(work, 'client')]);
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@bootcheck', '-f', path.join(work, 'hostkey')]);
    const hostKeyPub = readFileSync(path.join(work, 'hostkey.pub'), 'utf8');
    const port = await freePort();
    writeFileSync(path.join(work, 'known_hosts'), `[127.0.0.1]:${port} ${hostKeyPub.split(' ').slice(0, 2).join(' ')}\n`);

    const over = path.join(work, 'over.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', img.disk, '-F', 'qcow2', over, String(info.diskVirtualBytes)]);
    const qmpPath = path.join(work, 'qmp.sock');
    const qgaPath = path.join(work, 'qga.sock');
    const serial = path.join(work, 'serial.log');
    const argv = [
      '-machine', 'q35', '-accel', 'tcg,tb-size=64', '-cpu', 'max', '-m', '512', '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none',
      '-kernel', img.kernel, '-initrd', img.initrd, '-append', info.kernelCmdline,
      '-blockdev', `driver=file,filename=${over},node-name=file0`,
      '-blockdev', 'driver=qcow2,file=file0,node-name=disk0',
      '-device', 'virtio-blk-pci,drive=disk0',
      '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56',
      '-device', 'virtio-serial-pci',
      '-chardev', `socket,id=qga0,path=${qgaPath},server=on,wait=off`,
      '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-chardev', `file,id=ser0,path=${serial}`, '-serial', 'chardev:ser0',
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
    ];
    console.log(`booting ${info.id} (kernel ${info.kernelVersion}) under TCG; serial log: ${serial}`);
    const t0 = performance.now();
    qemu = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuErr = '';
    qemu.stderr!.on('data', (c: Buffer) => { qemuErr += c.toString(); });
    const exited = new Promise<void>((resolve) => qemu!.once('exit', () => resolve()));
    qemu.once('exit', (code, sig) => { if (code !== 0 && code !== null) console.error(`qemu exited ${code} ${sig ?? ''}: ${qemuErr}`); });

    for (let i = 0; !qmp; i++) {
      try { qmp = await JsonSocket.connect(qmpPath); } catch { if (i > 100) throw new Error(`no QMP socket: ${qemuErr}`); await sleep(50); }
    }
    await qmp.next(5000); // greeting
    await qmpCommand(qmp, 'qmp_capabilities');

    agent = await waitForAgent(qgaPath, Date.now() + 240_000);
    timings.bootToAgentMs = performance.now() - t0;
    check('guest agent answers', true, `${(timings.bootToAgentMs / 1000).toFixed(1)} s after QEMU start`);
    await qga(agent, 'guest-ping');
    const settled = await guestExec(agent, ['systemctl', 'is-system-running', '--wait'], undefined, 240_000);
    timings.bootToSystemRunningMs = performance.now() - t0;
    check('boot settles (systemctl is-system-running --wait)', settled.stdout.trim() === 'running', `${settled.stdout.trim()} at ${(timings.bootToSystemRunningMs / 1000).toFixed(1)} s`);
    const override = args.find((a) => a.startsWith('--script='))?.slice('--script='.length);
    if (override) {
      // development aid: try a changed apply-identity without rebuilding the image
      const put = await guestExec(agent, ['/bin/sh', '-c', 'base64 -d > /usr/lib/spritely/apply-identity'], readFileSync(override).toString('base64'));
      check(`apply-identity replaced by ${override}`, put.exitcode === 0, put.stderr);
    }

    const pre = await guestExec(agent, ['/bin/sh', '-c', 'test ! -e /root/.ssh/authorized_keys && ls /etc/ssh/ssh_host_* && cat /proc/cmdline']);
    check('image ships no authorized_keys', pre.exitcode === 0, pre.stdout.trim().replace(/\n/g, ' '));

    // identity, timed as the engine would run it (guest-exec round trip, polled every 5 ms)
    const hostname = 'bootcheck-' + Math.random().toString(36).slice(2, 8);
    const machineId = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
    const identity = identityInput({
      hostname,
      machine_id: machineId,
      host_key: readFileSync(path.join(work, 'hostkey')),
      host_key_pub: hostKeyPub,
      authorized_keys: readFileSync(path.join(work, 'client.pub')),
      seed: Buffer.from(crypto.getRandomValues(new Uint8Array(64))),
      time: (BigInt(Date.now()) * 1_000_000n).toString(),
    });
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const applied = await guestExec(agent, ['/usr/lib/spritely/apply-identity'], identity, 120_000, TRACE_ENV);
      runs.push(applied.ms);
      check(`apply-identity exits 0 (run ${i + 1})`, applied.exitcode === 0, `${applied.ms.toFixed(0)} ms`);
      if (i === 0 || applied.exitcode !== 0) console.log(applied.stderr.trim().replace(/^/gm, '      '));
    }
    timings.applyIdentityFirstMs = runs[0];
    timings.applyIdentityMedianMs = [...runs].sort((a, b) => a - b)[1];
    const trivial = await guestExec(agent, ['/bin/true']);
    timings.guestExecTrueMs = trivial.ms;
    const bad = await guestExec(agent, ['/usr/lib/spritely/apply-identity'], 'hostname ' + Buffer.from('Bad_Name').toString('base64') + '\n');
    check('apply-identity rejects bad input', bad.exitcode !== 0 && bad.stderr.includes('invalid hostname'), bad.stderr.trim());

    const state = await guestExec(agent, ['/bin/sh', '-c',
      'hostname; cat /etc/hostname; grep ^127.0.1.1 /etc/hosts; cat /etc/machine-id; stat -c "%a %n" /etc/ssh/ssh_host_* /root/.ssh /root/.ssh/authorized_keys']);
    const lines = state.stdout.trim().split('\n');
    check('hostname applied', lines[0] === hostname && lines[1] === hostname && lines[2] === `127.0.1.1\t${hostname}`, lines.slice(0, 3).join(' | '));
    check('machine-id applied', lines[3] === machineId);
    const modes = lines.slice(4).join(', ');
    check('host keys and authorized_keys modes', modes === '600 /etc/ssh/ssh_host_ed25519_key, 644 /etc/ssh/ssh_host_ed25519_key.pub, 700 /root/.ssh, 600 /root/.ssh/authorized_keys', modes);

    const sshArgs = [
      '-i', path.join(work, 'client'), '-p', String(port),
      '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20',
      '-o', `UserKnownHostsFile=${path.join(work, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'HostKeyAlgorithms=ssh-ed25519', '-o', 'LogLevel=ERROR',
      'root@127.0.0.1',
    ];
    const tSsh = performance.now();
    try {
      const { stdout } = await execFileP('ssh', [...sshArgs, 'hostname'], { timeout: 60_000 });
      timings.sshMs = performance.now() - tSsh;
      check('ssh with injected key; host key = injected one', stdout.trim() === hostname, `${timings.sshMs.toFixed(0)} ms`);
    } catch (err) {
      check('ssh with injected key; host key = injected one', false, (err as { stderr?: string }).stderr?.trim() ?? String(err));
    }
    const pw = await execFileP('ssh', [...sshArgs.slice(2), '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'true'], { timeout: 60_000 })
      .then(() => 'accepted', (err: { stderr?: string }) => err.stderr?.trim() ?? 'refused');
    check('ssh refuses password auth', pw !== 'accepted', pw);

    const first = debianMirrorArgs('bookworm')[0];
    const mirror = first?.startsWith('deb ') ? first.split(/\s+/)[1] : first;
    if (mirror) {
      const curl = await guestExec(agent, ['curl', '-sI', '-m', '30', mirror]);
      check(`curl -sI ${mirror} in the guest`, curl.exitcode === 0 && /^HTTP\//.test(curl.stdout), `${curl.stdout.split('\n')[0].trim()} (${curl.ms.toFixed(0)} ms)`);
    } else console.log('skip outbound HTTP: no Debian mirror configured (SPRITELY_DEBIAN_MIRROR or the host\'s apt sources)');
    if (args.includes('--apt-update')) {
      const apt = await guestExec(agent, ['apt-get', 'update', '-q'], undefined, 300_000);
      timings.aptUpdateMs = apt.ms;
      check('apt-get update in the guest', apt.exitcode === 0, `${(apt.ms / 1000).toFixed(1)} s${apt.exitcode ? `: ${apt.stderr.trim()}` : ''}`);
    }

    await qmpCommand(qmp, 'block_resize', { 'node-name': 'disk0', size: RESIZED_BYTES });
    const resized = await guestExec(agent, ['/usr/lib/spritely/apply-identity'], identityInput({ resize: `/dev/vda ${RESIZED_BYTES}` }), 120_000, TRACE_ENV);
    timings.resizeMs = resized.ms;
    const df = await guestExec(agent, ['df', '-B1', '--output=size', '/']);
    const fsBytes = Number(df.stdout.trim().split('\n').pop());
    check('resize2fs grew / online after block_resize to 100G', resized.exitcode === 0 && fsBytes > 95 * GiB,
      `${(fsBytes / GiB).toFixed(1)} GiB in ${resized.ms.toFixed(0)} ms${resized.stderr ? `; ${resized.stderr.trim()}` : ''}`);

    const sys = await guestExec(agent, ['/bin/sh', '-c',
      'systemctl is-system-running; systemctl --failed --no-legend --plain; systemctl is-active qemu-guest-agent spritely-sshd.socket systemd-networkd; systemd-analyze time | head -1; systemd-analyze blame | head -6']);
    const running = sys.stdout.split('\n')[0];
    check('systemd reports no failed units', running === 'running', sys.stdout.trim().replace(/\n+/g, ' | '));

    const top = await guestExec(agent, ['/bin/sh', '-c', 'free -m | sed -n 2p; du -sxh / 2>/dev/null | cut -f1']);
    console.log(`guest memory/disk: ${top.stdout.trim().replace(/\n/g, ' | ')}`);

    await qmpCommand(qmp, 'quit').catch(() => {});
    await Promise.race([exited, sleep(10_000)]);
  } catch (err) {
    check('boot check ran to the end', false, (err as Error).message);
  } finally {
    agent?.close();
    qmp?.close();
    if (qemu && qemu.exitCode === null && qemu.signalCode === null && qemu.pid) {
      process.kill(qemu.pid, 'SIGKILL');
    }
    if (!args.includes('--keep')) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
  console.log(JSON.stringify({ image: info.id, timings: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])) }));
  const failed = results.filter((r) => !r.ok);
  console.log(failed.length ? `${failed.length} check(s) failed` : `all ${results.length} checks passed`);
  return failed.length ? 1 : 0;
}

process.exitCode = await main();
