import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpritelyError } from '../errors.ts';
import type { MethodInput, MethodOutput } from '../api/contract.ts';
import { checkPath, contentBytes, formatList, isText, listRequest, MAX_WRITE_BYTES, parseList, parseMode, parseRead, parseWrite, readRequest, writeRequest } from './files.ts';

/**
 * The scripts are run for real here, with the host's bash and GNU tools (the guest has the same
 * Debian ones), in a temp dir standing in for /root: what the sprite would run, minus the VM.
 */
let dir: string;
function runLocally(req: MethodInput<'sprites.exec'>): MethodOutput<'sprites.exec'> {
  const r = spawnSync(req.argv[0], req.argv.slice(1), { cwd: dir, input: req.stdin ?? '', encoding: 'utf8' });
  return { exitCode: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, truncated: false, timedOut: false, durationMs: 1 };
}
const read = (p: string, max = 1024) => parseRead('dev', p, max, runLocally(readRequest('dev', p, max)));
const write = (p: string, content: Buffer, mode?: string) => parseWrite('dev', p, runLocally(writeRequest('dev', p, content, mode)));
const list = (p: string, limit?: number) => parseList('dev', p, runLocally(listRequest('dev', p)), limit);
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return [(e as SpritelyError).code, (e as Error).message];
  }
  return null;
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-files-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('checkPath', () => {
  it('refuses empty paths, NUL bytes and absurd lengths with a sentence', () => {
    expect(code(() => checkPath(''))).toEqual(['invalid_argument', expect.stringMatching(/path is empty/)]);
    expect(code(() => checkPath('/tmp/a\0b'))).toEqual(['invalid_argument', expect.stringMatching(/NUL byte/)]);
    expect(code(() => checkPath('x'.repeat(5000)))).toEqual(['invalid_argument', expect.stringMatching(/5000 characters/)]);
    expect(code(() => checkPath(undefined))).toEqual(['invalid_argument', expect.stringMatching(/must be a string/)]);
    expect(checkPath('/root/a b')).toBe('/root/a b');
    expect(code(() => readRequest('dev', ''))).not.toBeNull();
    expect(code(() => writeRequest('dev', 'a\0', Buffer.from('x')))).not.toBeNull();
    expect(code(() => listRequest('dev', ''))).not.toBeNull();
  });

  it('passes the path as its own argv element, never inside the script', () => {
    const evil = "/tmp/$(touch pwned)'; rm -rf / #";
    for (const req of [readRequest('dev', evil), writeRequest('dev', evil, Buffer.from('')), listRequest('dev', evil)]) {
      expect(req.argv[0]).toBe('bash');
      expect(req.argv[1]).toBe('-c');
      expect(req.argv[2]).not.toContain(evil);
      expect(req.argv[4]).toBe(evil);
    }
  });
});

describe('file scripts, run for real', () => {
  it('round-trips text and binary, whatever the file name', () => {
    const names = ['plain.txt', 'with space.txt', "quote'\"$(touch pwned).txt", '-rf', '!', 'nested/deeper/file', 'new\nline'];
    for (const n of names) {
      expect(write(n, Buffer.from(`hello ${n}\n`))).toMatchObject({ path: n, bytes: Buffer.byteLength(`hello ${n}\n`) });
      expect(read(n)).toEqual({ path: n, encoding: 'utf8', size: Buffer.byteLength(`hello ${n}\n`), content: `hello ${n}\n` });
    }
    expect(fs.existsSync(path.join(dir, 'pwned'))).toBe(false);
    const bin = Buffer.from([0, 1, 2, 255, 254, 0x80, 10, 0]);
    write('/' + path.relative('/', path.join(dir, 'bin.dat')), bin);
    const r = read(path.join(dir, 'bin.dat'));
    expect(r.encoding).toBe('base64');
    expect(Buffer.from(r.content, 'base64')).toEqual(bin);
    expect(write('empty', Buffer.alloc(0))).toMatchObject({ bytes: 0 });
    expect(read('empty')).toMatchObject({ encoding: 'utf8', content: '', size: 0 });
  });

  it('sets the mode when asked and reports it', () => {
    expect(write('script.sh', Buffer.from('#!/bin/sh\necho hi\n'), '755')).toMatchObject({ mode: '0755' });
    expect(fs.statSync(path.join(dir, 'script.sh')).mode & 0o7777).toBe(0o755);
    expect(write('script.sh', Buffer.from('#!/bin/sh\n'))).toMatchObject({ mode: '0755' });
  });

  it('says clearly what is wrong: missing, directory, too large, not a directory', () => {
    expect(code(() => read('nope.txt'))).toEqual(['not_found', 'No such file in sprite "dev": nope.txt.']);
    fs.mkdirSync(path.join(dir, 'adir'), { recursive: true });
    expect(code(() => read('adir'))).toEqual(['invalid_argument', expect.stringMatching(/adir is a directory.*file_list/)]);
    expect(code(() => write('adir', Buffer.from('x')))).toEqual(['invalid_argument', expect.stringMatching(/adir is a directory/)]);
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(2000, 'a'));
    expect(code(() => read('big', 1999))).toEqual(['payload_too_large', expect.stringMatching(/larger than 1999 bytes.*head -c/)]);
    expect(read('big', 2000).size).toBe(2000);
    expect(code(() => list('plain.txt'))).toEqual(['invalid_argument', expect.stringMatching(/not a directory; use file_read/)]);
    expect(code(() => list('missing-dir'))).toEqual(['not_found', expect.stringMatching(/No such directory/)]);
    fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
    expect(code(() => read('dangling'))).toEqual(['not_found', expect.stringMatching(/symlink to a missing file/)]);
    expect(code(() => write('plain.txt/below', Buffer.from('x')))).toEqual(['failed_precondition', expect.stringMatching(/parent directories/)]);
  });

  it('refuses FIFOs instead of blocking on them', () => {
    spawnSync('mkfifo', [path.join(dir, 'fifo')]);
    expect(code(() => read('fifo'))).toEqual(['invalid_argument', expect.stringMatching(/not a regular file/)]);
  });

  it('lists entries with type, size, mode, mtime and symlink targets, sorted', () => {
    const l = list('.');
    const by = Object.fromEntries(l.entries.map((e) => [e.name, e]));
    expect(l.entries.map((e) => e.name)).toEqual([...l.entries.map((e) => e.name)].sort());
    expect(by['plain.txt']).toMatchObject({ type: 'file', size: 16, mode: '0644', target: null });
    expect(Math.abs(Date.parse(by['plain.txt'].mtime) - fs.statSync(path.join(dir, 'plain.txt')).mtimeMs)).toBeLessThan(1000);
    expect(by['script.sh']).toMatchObject({ type: 'file', mode: '0755' });
    expect(by['nested']).toMatchObject({ type: 'directory' });
    expect(by['dangling']).toMatchObject({ type: 'symlink', target: 'nowhere' });
    expect(by['fifo']).toMatchObject({ type: 'fifo' });
    expect(by['new\nline']).toMatchObject({ type: 'file' });
    expect(by['-rf']).toMatchObject({ type: 'file' });
    expect(l.total).toBe(l.entries.length);
    const text = formatList(l);
    expect(text).toMatch(/^\. \(\d+ entries\)/);
    expect(text).toMatch(/dir  0755 +\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d nested\//);
    expect(text).toContain('dangling -> nowhere');
    const cut = list('.', 3);
    expect(cut.entries).toHaveLength(3);
    expect(cut.total).toBe(l.total);
    expect(formatList(cut)).toContain(`${l.total - 3} more entries not shown`);
    expect(formatList(list('nested/deeper'))).toContain('file');
    fs.mkdirSync(path.join(dir, 'void'));
    expect(formatList(list('void'))).toBe('void: empty directory');
  });
});

describe('pure helpers', () => {
  it('isText: UTF-8 without NUL and with few control characters', () => {
    expect(isText(Buffer.from('héllo wörld ✓\n\ttab\r\n'))).toBe(true);
    expect(isText(Buffer.from('\x1b[31mred\x1b[0m' + 'x'.repeat(500)))).toBe(true);
    expect(isText(Buffer.from('a\0b'))).toBe(false);
    expect(isText(Buffer.from([0xc3, 0x28]))).toBe(false);
    expect(isText(Buffer.from('\x01\x02\x03abc'))).toBe(false);
    expect(isText(Buffer.alloc(0))).toBe(true);
  });

  it('parseMode takes octal permission bits only', () => {
    expect(parseMode('644')).toBe('644');
    expect(parseMode('0755')).toBe('0755');
    expect(parseMode('4755')).toBe('4755');
    expect(parseMode(undefined)).toBeUndefined();
    for (const bad of ['u+x', '999', '75', '-R 777', '0o755']) expect(code(() => parseMode(bad))?.[0]).toBe('invalid_argument');
  });

  it('contentBytes decodes base64 strictly and text as UTF-8', () => {
    expect(contentBytes('aGVsbG8=', 'base64').toString()).toBe('hello');
    expect(contentBytes('aGVs\nbG8=', 'base64').toString()).toBe('hello');
    expect(contentBytes('hé', 'utf8')).toEqual(Buffer.from([0x68, 0xc3, 0xa9]));
    expect(code(() => contentBytes('not base64!', 'base64'))).toEqual(['invalid_argument', expect.stringMatching(/not valid base64/)]);
  });

  it('refuses content over the per-call limit before calling anything', () => {
    expect(code(() => writeRequest('dev', '/x', Buffer.alloc(MAX_WRITE_BYTES + 1)))).toEqual(['payload_too_large', expect.stringMatching(/at most 6291456 bytes/)]);
    const req = writeRequest('dev', '/x', Buffer.alloc(MAX_WRITE_BYTES));
    expect(req.stdin!.length).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('reports a timeout or a killed command as such', () => {
    const base = { stdout: '', stderr: '', truncated: false, durationMs: 1 };
    expect(code(() => parseRead('dev', '/x', 10, { ...base, exitCode: null, signal: 'KILL', timedOut: true }))?.[0]).toBe('timeout');
    expect(code(() => parseList('dev', '/x', { ...base, exitCode: null, signal: 'KILL', timedOut: false }))).toEqual(['internal', expect.stringMatching(/signal KILL/)]);
  });
});
