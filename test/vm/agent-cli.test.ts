/**
 * The CLI for people and agents, on real QEMU through the real CLI and daemon: `spritely cp` both
 * ways (a tree with a binary file, an executable, an empty file, nested dirs; 20 MB; the error
 * cases, which must create nothing), `spritely ssh-config` used by the real OpenSSH client (host
 * key verified; a sleeping sprite woken by the proxy; agent and port forwarding from a `Host *` kept
 * away from the sprite when the generated file is Included first) and `exec --checkpoint`. One sprite.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../../vm/ssh/keys.ts';
import { daemonLog, runCommand, startDaemon, waitFor, type TestDaemon } from './harness.ts';

const S = 'agent';
const STEP = 120_000;
let d: TestDaemon;
let tmp: string;

beforeAll(async () => {
  d = await startDaemon();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cli-'));
  await ok(['create', S]);
});

afterAll(async () => {
  await d?.cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function ok(args: string[], timeoutMs = STEP) {
  const r = await d.cli(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`spritely ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${daemonLog(d)}`);
  return r;
}

async function guest(script: string): Promise<string> {
  return (await ok(['exec', S, '--', 'sh', '-c', script])).stdout;
}

/** Every entry under `root`: relative path, type, mode, size, mtime (s) and sha256 of contents. */
function hostTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`${r} d ${mode}`);
        walk(p, r);
      } else out.push(`${r} f ${mode} ${st.size} ${Math.floor(st.mtimeMs / 1000)} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(root, '');
  return out;
}

/** The same listing made in the guest with find + sha256sum. */
async function guestTree(root: string): Promise<string[]> {
  const text = await guest(
    `cd ${root} && find . -mindepth 1 | LC_ALL=C sort | while read -r p; do r=\${p#./}; if [ -d "$p" ]; then echo "$r d $(stat -c %a "$p")"; else echo "$r f $(stat -c '%a %s %Y' "$p") $(sha256sum < "$p" | cut -d' ' -f1)"; fi; done`,
  );
  return text.trim().split('\n');
}

const run = (cmd: string, args: string[], timeoutMs = STEP) => runCommand(cmd, args, d.env, { timeoutMs });

describe('spritely cp', () => {
  let src: string;

  beforeAll(() => {
    // Directory order is sorted; file names need no quoting in the guest listing.
    src = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(src, 'a/b/c'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a/random.bin'), crypto.randomBytes(300_000));
    fs.writeFileSync(path.join(src, 'a/b/run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    fs.chmodSync(path.join(src, 'a/b/run.sh'), 0o755);
    fs.writeFileSync(path.join(src, 'a/b/c/empty'), '');
    fs.writeFileSync(path.join(src, 'private.txt'), 'secret\n', { mode: 0o600 });
    fs.chmodSync(path.join(src, 'private.txt'), 0o600);
    fs.chmodSync(path.join(src, 'a/b'), 0o750);
    const old = new Date('2021-03-04T05:06:07Z');
    for (const f of ['a/random.bin', 'a/b/run.sh', 'a/b/c/empty', 'private.txt']) fs.utimesSync(path.join(src, f), old, old);
  });

  it('a directory tree goes into a sprite and comes back byte for byte, modes and mtimes kept', async () => {
    const up = await ok(['cp', src, `${S}:/root/`]);
    expect(up.stdout).toBe('');
    expect(up.stderr).toMatch(/^copied .* → agent:\/root\/ \(/);
    expect(await guestTree('/root/tree')).toEqual(hostTree(src));
    // Root owns what was copied in (like docker cp), and the executable runs.
    expect((await guest('stat -c %U:%G /root/tree/a/random.bin && /root/tree/a/b/run.sh')).trim()).toBe('root:root\nran');

    // Back into an existing directory: it lands inside, under its own name.
    const back = path.join(tmp, 'back');
    fs.mkdirSync(back);
    await ok(['cp', `${S}:/root/tree`, back]);
    expect(fs.readdirSync(back)).toEqual(['tree']);
    expect(hostTree(path.join(back, 'tree'))).toEqual(hostTree(src));

    // To a new name: the directory becomes it. "/." copies the contents into an existing directory.
    await ok(['cp', `${S}:tree`, path.join(tmp, 'renamed')]);
    expect(hostTree(path.join(tmp, 'renamed'))).toEqual(hostTree(src));
    await ok(['cp', `${src}/.`, `${S}:/root/tree/a/b/c`]);
    expect((await guest('ls /root/tree/a/b/c | tr "\\n" " "')).trim()).toBe('a empty private.txt');
  });

  it('single files: to a new name, onto an existing file, into a directory, and out again', async () => {
    await ok(['cp', path.join(src, 'a/b/run.sh'), `${S}:/usr/local/bin/hello`]);
    expect((await guest('hello && stat -c %a /usr/local/bin/hello')).trim()).toBe('ran\n755');
    await ok(['cp', path.join(src, 'private.txt'), `${S}:/usr/local/bin/hello`]);
    expect((await guest('cat /usr/local/bin/hello; stat -c %a /usr/local/bin/hello')).trim()).toBe('secret\n600');
    await ok(['cp', `${S}:/etc/hostname`, tmp]);
    expect(fs.readFileSync(path.join(tmp, 'hostname'), 'utf8')).toBe(`${S}\n`);
    await ok(['cp', `${S}:/usr/local/bin/hello`, path.join(tmp, 'hostname')]);
    expect(fs.readFileSync(path.join(tmp, 'hostname'), 'utf8')).toBe('secret\n');
  });

  it('20 MB round trip, streamed', async () => {
    const big = path.join(tmp, 'big.bin');
    fs.writeFileSync(big, crypto.randomBytes(20 * 1024 * 1024));
    const sum = crypto.createHash('sha256').update(fs.readFileSync(big)).digest('hex');
    let t0 = Date.now();
    await ok(['cp', big, `${S}:/root/big.bin`], 300_000);
    const upMs = Date.now() - t0;
    expect((await guest('sha256sum /root/big.bin')).split(' ')[0]).toBe(sum);
    t0 = Date.now();
    await ok(['cp', `${S}:/root/big.bin`, path.join(tmp, 'big.back')], 300_000);
    const downMs = Date.now() - t0;
    expect(crypto.createHash('sha256').update(fs.readFileSync(path.join(tmp, 'big.back'))).digest('hex')).toBe(sum);
    process.stderr.write(`[agent-cli] 20 MiB cp: up ${(upMs / 1000).toFixed(1)} s (${(20 / (upMs / 1000)).toFixed(1)} MiB/s), down ${(downMs / 1000).toFixed(1)} s (${(20 / (downMs / 1000)).toFixed(1)} MiB/s), CLI start included\n`);
    await guest('rm /root/big.bin');
  });

  it('refuses clearly, exits non-zero and creates nothing', async () => {
    const guestBefore = await guest('find /root /tmp | LC_ALL=C sort');
    const hostBefore = hostTree(tmp);
    const cases: [string[], RegExp][] = [
      [[path.join(tmp, 'no-such'), `${S}:/root/`], /The source .*no-such does not exist/],
      [[`${S}:/root/no-such`, tmp], /The source agent:\/root\/no-such does not exist/],
      [[src, `${S}:/root/missing/parent/tree`], /parent directory agent:\/root\/missing\/parent does not exist/],
      [[`${S}:/etc/hostname`, path.join(tmp, 'missing/parent/x')], /parent directory .*missing\/parent does not exist/],
      [[path.join(src, 'private.txt'), `${S}:/root/newdir/`], /The destination directory agent:\/root\/newdir\/ does not exist/],
      [[src, `${S}:/etc/hostname`], /Cannot copy the directory .* onto the file agent:\/etc\/hostname/],
      [[src, 'ghost:/root/'], /No sprite named "ghost"/],
      [[`${S}:/etc/hostname`, `${S}:/tmp/`], /Both .* are in sprites/],
      [[src, path.join(tmp, 'elsewhere')], /Neither .* is in a sprite/],
      [['Bad_Name:/x', tmp], /does not start with a sprite name/],
    ];
    for (const [args, message] of cases) {
      const r = await d.cli(['cp', ...args], { timeoutMs: STEP });
      expect(r.code, `cp ${args.join(' ')}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr, `cp ${args.join(' ')}`).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(await guest('find /root /tmp | LC_ALL=C sort')).toBe(guestBefore);
    expect(hostTree(tmp)).toEqual(hostBefore);
  });
});

describe('spritely ssh-config and plain OpenSSH', () => {
  let config: string;

  it('prints a Host block that ssh uses to log in, with the pinned host key verified', async () => {
    const r = await ok(['ssh-config', S]);
    config = path.join(tmp, 'ssh_config');
    fs.writeFileSync(config, r.stdout);
    expect(r.stdout).toMatch(new RegExp(`^Host ${S}$`, 'm'));
    expect(r.stdout).toContain(`IdentityFile ${path.join(d.home, 'keys/id_ed25519')}`);
    expect(r.stdout).toContain(`HostKeyAlias spritely-${S}`);
    expect(r.stdout).toContain('StrictHostKeyChecking yes');
    const known = path.join(d.home, 'ssh', `${S}.known_hosts`);
    expect(r.stdout).toContain(`UserKnownHostsFile ${known}`);
    expect(fs.statSync(known).mode & 0o777).toBe(0o600);
    const pinned = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites', S, 'sprite.json'), 'utf8')).hostKeyPub.split(' ').slice(0, 2).join(' ');
    expect(fs.readFileSync(known, 'utf8')).toBe(`spritely-${S} ${pinned}\n`);

    const s = await run('ssh', ['-F', config, '-o', 'BatchMode=yes', S, 'hostname; echo ok']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toBe(`${S}\nok\n`);
    process.stderr.write(`[agent-cli] ssh via ssh-config (awake): ${s.ms} ms\n`);

    // The same config with a known_hosts holding another key: ssh refuses the sprite.
    const wrong = path.join(tmp, 'wrong_known_hosts');
    fs.writeFileSync(wrong, `spritely-${S} ${generateEd25519('x').publicKey.split(' ').slice(0, 2).join(' ')}\n`, { mode: 0o600 });
    const wrongConfig = path.join(tmp, 'ssh_config_wrong');
    fs.writeFileSync(wrongConfig, r.stdout.replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${wrong}`));
    const bad = await run('ssh', ['-F', wrongConfig, '-o', 'BatchMode=yes', S, 'echo should-not-run']);
    expect(bad.code).toBe(255);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('wakes a sleeping sprite (the proxy does it) and scp works through it', async () => {
    await ok(['sleep', S]);
    expect((await d.api.call('sprites.get', { name: S })).state).toBe('sleeping');
    const s = await run('ssh', ['-F', config, '-o', 'BatchMode=yes', S, 'hostname; echo ok']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toBe(`${S}\nok\n`);
    process.stderr.write(`[agent-cli] ssh via ssh-config (sleeping → awake): ${s.ms} ms\n`);
    expect((await d.api.call('sprites.get', { name: S })).state).toBe('running');

    const file = path.join(tmp, 'via-scp');
    fs.writeFileSync(file, 'through scp\n');
    const scp = await run('scp', ['-F', config, '-o', 'BatchMode=yes', file, `${S}:/root/via-scp`]);
    expect(scp.code, scp.stderr).toBe(0);
    expect(await guest('cat /root/via-scp')).toBe('through scp\n');
  });

  it('an open ssh connection keeps the sprite awake past its idle timeout; it sleeps once ssh ends', async () => {
    await ok(['config', 'set', 'idle-timeout', '4s', '--sprite', S]);
    try {
      const s = await run('ssh', ['-F', config, '-o', 'BatchMode=yes', S, 'sleep 14; echo still-here']);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toBe('still-here\n');
      await waitFor('the sprite to fall asleep after ssh ended', async () => (await d.api.call('sprites.get', { name: S })).state === 'sleeping', 60_000, 500);
    } finally {
      await ok(['config', 'set', 'idle-timeout', '0', '--sprite', S]);
    }
  });

  it('Included at the top of a config whose `Host *` forwards the agent and a port, gives the sprite neither', async () => {
    const generated = path.join(tmp, 'spritely.conf');
    fs.writeFileSync(generated, (await ok(['ssh-config', '--all'])).stdout);
    const hostStar = ['Host *', '  ForwardAgent yes', '  RemoteForward 127.0.0.1:9999 127.0.0.1:22', ''].join('\n');
    const top = path.join(tmp, 'ssh_config_include');
    fs.writeFileSync(top, `Include ${generated}\n\n${hostStar}`);
    // An agent socket for ssh to offer (nothing must ever connect to it from the sprite).
    const agentSock = path.join(tmp, 'agent.sock');
    const fakeAgent = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => fakeAgent.listen(agentSock, r));
    try {
      const env = { ...d.env, SSH_AUTH_SOCK: agentSock };
      const probe = 'echo "agent=${SSH_AUTH_SOCK:-none}"; ss -Hltn "sport = :9999" | wc -l';
      const s = await runCommand('ssh', ['-F', top, '-o', 'BatchMode=yes', S, probe], env, { timeoutMs: STEP });
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toBe('agent=none\n0\n');
      // Control: the same block without those three options hands both to the sprite.
      const open = path.join(tmp, 'spritely-open.conf');
      fs.writeFileSync(open, fs.readFileSync(generated, 'utf8').replace(/^ {2}(ForwardAgent|ForwardX11|ClearAllForwardings) .*\n/gm, ''));
      const openTop = path.join(tmp, 'ssh_config_open');
      fs.writeFileSync(openTop, `Include ${open}\n\n${hostStar}`);
      const c = await runCommand('ssh', ['-F', openTop, '-o', 'BatchMode=yes', S, probe], env, { timeoutMs: STEP });
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout).toMatch(/^agent=\/tmp\/ssh-\S+\n1\n$/);
    } finally {
      fakeAgent.close();
    }
    // as the tests before left it (ssh woke it)
    await ok(['sleep', S]);
  });

  it('refuses an unknown sprite, and --all lists every sprite', async () => {
    const r = await d.cli(['ssh-config', 'ghost']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No sprite named "ghost"/);
    const all = await ok(['ssh-config', '--all']);
    expect(all.stdout.match(/^Host /gm)).toEqual(['Host ']);
    expect(all.stdout).toContain(`Host ${S}\n`);
  });
});

describe('exec --checkpoint', () => {
  it('checkpoints before running (waking a sleeping sprite first, so RAM is in it); the id goes to stderr, stdout is the command', async () => {
    expect((await d.api.call('sprites.get', { name: S })).state).toBe('sleeping');
    const r = await ok(['exec', '--checkpoint', S, '--', 'sh', '-c', 'echo hello; echo to-err >&2']);
    expect(r.stdout).toBe('hello\n');
    const id = /checkpoint (v\d+) of agent/.exec(r.stderr)?.[1];
    expect(id, r.stderr).toBeDefined();
    expect(r.stderr).toContain('to-err');
    const named = await ok(['exec', S, '--checkpoint=before the upgrade', '--', 'true']);
    const id2 = /checkpoint (v\d+) of agent/.exec(named.stderr)?.[1];
    const cps = await d.api.call('checkpoints.list', { name: S });
    expect(cps.find((c) => c.id === id)).toMatchObject({ comment: "before: sh -c 'echo hello; echo to-err >&2'", memory: true });
    expect(cps.find((c) => c.id === id2)).toMatchObject({ comment: 'before the upgrade' });

    // A failing command still has its checkpoint, and its exit code passes through.
    const failed = await d.cli(['exec', '--checkpoint', S, '--', 'sh', '-c', 'exit 3'], { timeoutMs: STEP });
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(/checkpoint v\d+ of agent: before: sh -c 'exit 3'/);
  });
});
