import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { debianMirrorArgs, hostAptSources, mirrorEntries, parseDeb822Sources, parseOneLineSources } from './debian-mirror.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function aptDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-apt-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('apt sources', () => {
  it('reads one-line entries, skipping comments, options and deb-src', () => {
    const text = '# a comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\ndeb-src http://mirror.example/debian bookworm main\n\ndeb http://other.example/x stable main # trailing\n';
    expect(parseOneLineSources(text)).toEqual([
      { types: ['deb'], uri: 'http://mirror.example/debian', suites: ['bookworm'], components: ['main', 'contrib'] },
      { types: ['deb-src'], uri: 'http://mirror.example/debian', suites: ['bookworm'], components: ['main'] },
      { types: ['deb'], uri: 'http://other.example/x', suites: ['stable'], components: ['main'] },
    ]);
  });

  it('reads deb822 stanzas, several URIs and suites, and leaves out disabled ones', () => {
    const text = [
      'Types: deb deb-src',
      '# http://snapshot.example/archive',
      'URIs: http://mirror.example/debian',
      '  http://mirror2.example/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://mirror.example/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      'Enabled: no',
    ].join('\n');
    expect(parseDeb822Sources(text)).toEqual([
      { types: ['deb', 'deb-src'], uri: 'http://mirror.example/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
      { types: ['deb', 'deb-src'], uri: 'http://mirror2.example/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
    ]);
  });

  it("keeps the entries that serve the recipe's suite, its updates and security, once each", () => {
    const sources = [
      ...parseOneLineSources('deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian bookworm main\ndeb http://vendor.example/apt nodistro main\ndeb http://mirror.example/debian trixie main\n'),
      ...parseDeb822Sources('Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main non-free-firmware\n'),
      ...parseOneLineSources('deb http://mirror.example/debian bookworm-updates contrib\n'),
    ];
    expect(mirrorEntries(sources, 'bookworm')).toEqual(['deb http://mirror.example/debian bookworm main', 'deb http://mirror.example/debian-security bookworm-security main']);
  });

  it("reads the host's sources.list and sources.list.d (.list and .sources, nothing else)", () => {
    const dir = aptDir({
      'sources.list': 'deb http://mirror.example/debian bookworm main\n',
      'sources.list.d/b.sources': 'Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
      'sources.list.d/a.list': 'deb http://mirror.example/debian bookworm-updates main\n',
      'sources.list.d/c.list.disabled': 'deb http://nope.example/debian bookworm main\n',
    });
    expect(hostAptSources(dir).map((s) => s.uri)).toEqual(['http://mirror.example/debian', 'http://mirror.example/debian', 'http://mirror.example/debian-security']);
    expect(debianMirrorArgs('bookworm', {}, dir)).toEqual([
      'deb http://mirror.example/debian bookworm main',
      'deb http://mirror.example/debian bookworm-updates main',
      'deb http://mirror.example/debian-security bookworm-security main',
    ]);
  });

  it('prefers SPRITELY_DEBIAN_MIRROR, and gives nothing (mmdebstrap decides) on a host without Debian sources', () => {
    const dir = aptDir({ 'sources.list': 'deb http://archive.example/ubuntu jammy main\n' });
    expect(debianMirrorArgs('bookworm', { SPRITELY_DEBIAN_MIRROR: 'http://local.example/debian' }, dir)).toEqual(['http://local.example/debian']);
    expect(debianMirrorArgs('bookworm', {}, dir)).toEqual([]);
    expect(debianMirrorArgs('bookworm', {}, path.join(dir, 'missing'))).toEqual([]);
  });
});
