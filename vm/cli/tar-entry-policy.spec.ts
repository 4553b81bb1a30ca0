import { describe, expect, it } from 'vitest';
import { decideEntry, entryMode, entryPath, symlinkRefusal, type EntryContext, type EntryHeader, type Made } from './tar-entry-policy.ts';

describe('entryPath', () => {
  it('gives the components below the expected top-level entry', () => {
    expect(entryPath('src', 'src', true)).toEqual({ rel: [] });
    expect(entryPath('src/', 'src', true)).toEqual({ rel: [] });
    expect(entryPath('src/a/b.txt', 'src', false)).toEqual({ rel: ['a', 'b.txt'] });
    expect(entryPath('./', '.', true)).toEqual({ rel: [] });
    expect(entryPath('.', '.', true)).toEqual({ rel: [] });
    expect(entryPath('./a/b', '.', false)).toEqual({ rel: ['a', 'b'] });
    expect(entryPath('src/a b\\c:d', 'src', false)).toEqual({ rel: ['a b\\c:d'] });
  });

  it('refuses absolute names, ".." anywhere, and names not under the top-level entry', () => {
    expect(entryPath('/etc/passwd', 'src', false)).toEqual({ refused: 'is an absolute path' });
    expect(entryPath('//x', 'src', false)).toEqual({ refused: 'is an absolute path' });
    expect(entryPath('../.bashrc', 'src', false)).toEqual({ refused: 'has a ".." component' });
    expect(entryPath('src/../.bashrc', 'src', false)).toEqual({ refused: 'has a ".." component' });
    expect(entryPath('src/a/..', 'src', true)).toEqual({ refused: 'has a ".." component' });
    expect(entryPath('./../x', '.', false)).toEqual({ refused: 'has a ".." component' });
    expect(entryPath('..', '.', true)).toEqual({ refused: 'has a ".." component' });
    expect(entryPath('other/x', 'src', false)).toEqual({ refused: 'is not under "src", the only top-level entry asked for' });
    expect(entryPath('srcx/y', 'src', false)).toMatchObject({ refused: expect.stringContaining('is not under') });
    expect(entryPath('x', '.', false)).toMatchObject({ refused: expect.stringContaining('is not under ".",') });
    expect(entryPath('./src/x', 'src', false)).toMatchObject({ refused: expect.stringContaining('is not under') });
  });

  it('refuses empty, "." and NUL components, empty and overlong names, and a slash after a non-directory', () => {
    expect(entryPath('', 'src', false)).toEqual({ refused: 'has an empty name' });
    expect(entryPath('src//a', 'src', false)).toEqual({ refused: 'has an empty or "." component in its name' });
    expect(entryPath('src/./a', 'src', false)).toEqual({ refused: 'has an empty or "." component in its name' });
    expect(entryPath('src/a/', 'src', false)).toEqual({ refused: 'has an empty or "." component in its name' });
    expect(entryPath('src/a//', 'src', true)).toEqual({ refused: 'has an empty or "." component in its name' });
    expect(entryPath('src/a\0b', 'src', false)).toEqual({ refused: 'has a NUL byte in its name' });
    expect(entryPath(`src/${'a/'.repeat(2100)}x`, 'src', false)).toEqual({ refused: 'has a name longer than 4096 bytes' });
  });
});

describe('symlinkRefusal: targets resolved from the link, inside the tree only', () => {
  it('accepts targets that stay inside', () => {
    expect(symlinkRefusal(['link'], 'sub/f')).toBeNull();
    expect(symlinkRefusal(['link'], '.')).toBeNull();
    expect(symlinkRefusal(['link'], './sub//f')).toBeNull();
    expect(symlinkRefusal(['a', 'b', 'link'], '../../x')).toBeNull();
    expect(symlinkRefusal(['a', 'link'], '..')).toBeNull();
    expect(symlinkRefusal(['a', 'link'], 'missing')).toBeNull(); // dangling but inside
  });

  it('refuses what climbs out, absolute targets, and ".." after a name', () => {
    expect(symlinkRefusal(['link'], '..')).toBe('is a symlink to "..", which points outside what is copied');
    expect(symlinkRefusal(['link'], '../.bashrc')).toMatch(/outside what is copied/);
    expect(symlinkRefusal(['a', 'b', 'link'], '../../../x')).toMatch(/outside/);
    expect(symlinkRefusal(['a', 'link'], '/etc/passwd')).toBe('is a symlink to the absolute path "/etc/passwd" (on this computer that is outside what is copied)');
    // "d/l1/.." stays inside only if d/l1 is not itself a symlink to somewhere else.
    expect(symlinkRefusal(['a', 'link'], 'd/../x')).toBe('is a symlink to "d/../x", which has a ".." after a name');
    expect(symlinkRefusal(['link'], 'x/..')).toMatch(/after a name/);
  });

  it('refuses a top-level symlink, an empty target and NULs', () => {
    expect(symlinkRefusal([], 'python3.11')).toBe('is a symlink (to "python3.11"), and the copied path itself must be a file or a directory');
    expect(symlinkRefusal([], '.')).toMatch(/copied path itself/);
    expect(symlinkRefusal(['l'], '')).toBe('is a symlink with an empty target');
    expect(symlinkRefusal(['l'], 'a\0b')).toBe('is a symlink with a NUL byte in its target');
    expect(symlinkRefusal(['l'], 'a/'.repeat(2100))).toMatch(/longer than 4096 bytes/);
  });

  it('shows a hostile target made inert', () => {
    expect(symlinkRefusal(['l'], '/\x1b[2Jx')).toContain('"/\\x1b[2Jx"');
  });
});

describe('decideEntry', () => {
  const ctx = (made: [string, 'file' | 'dir' | 'symlink'][] = [['', 'dir']], over: Partial<EntryContext> = {}): EntryContext => ({ top: 'src', topKind: 'dir', made: new Map(made) as Made, maxFileBytes: 1000, ...over });
  const h = (name: string, type: string | null, more: Partial<EntryHeader> = {}): EntryHeader => ({ name, type, size: 0, linkname: null, ...more });

  it('places files, directories, contained symlinks and hard links to earlier files', () => {
    expect(decideEntry(h('src/', 'directory'), ctx([]))).toEqual({ kind: 'dir', rel: [] });
    expect(decideEntry(h('src/a', 'file', { size: 1000 }), ctx())).toEqual({ kind: 'file', rel: ['a'] });
    expect(decideEntry(h('src/d/', 'directory'), ctx())).toEqual({ kind: 'dir', rel: ['d'] });
    expect(decideEntry(h('src/l', 'symlink', { linkname: 'a' }), ctx())).toEqual({ kind: 'symlink', rel: ['l'] });
    expect(decideEntry(h('src/h', 'link', { linkname: 'src/a' }), ctx([['', 'dir'], ['a', 'file']]))).toEqual({ kind: 'hardlink', rel: ['h'], target: ['a'] });
    expect(decideEntry(h('f.txt', 'file', { size: 3 }), ctx([], { top: 'f.txt', topKind: 'file' }))).toEqual({ kind: 'file', rel: [] });
    expect(decideEntry(h('./', 'directory'), ctx([], { top: '.' }))).toEqual({ kind: 'dir', rel: [] });
  });

  it('refuses device nodes, FIFOs and types it does not know', () => {
    expect(decideEntry(h('src/null', 'character-device'), ctx())).toEqual({ refused: 'is a character device' });
    expect(decideEntry(h('src/sda', 'block-device'), ctx())).toEqual({ refused: 'is a block device' });
    expect(decideEntry(h('src/p', 'fifo'), ctx())).toEqual({ refused: 'is a FIFO' });
    expect(decideEntry(h('src/c', 'contiguous-file'), ctx())).toMatchObject({ refused: expect.stringContaining('contiguous') });
    expect(decideEntry(h('src/x', null), ctx())).toEqual({ refused: 'is an entry of a type spritely cp does not copy' });
    expect(decideEntry(h('src/x', 'pax-header'), ctx())).toMatchObject({ refused: expect.stringContaining('type') });
  });

  it('refuses duplicates, entries before their directory, under a file or under a symlink', () => {
    expect(decideEntry(h('src/', 'directory'), ctx())).toEqual({ refused: 'appears twice in the archive' });
    expect(decideEntry(h('src/a', 'file'), ctx([['', 'dir'], ['a', 'file']]))).toEqual({ refused: 'appears twice in the archive' });
    expect(decideEntry(h('src/a', 'file'), ctx([]))).toEqual({ refused: 'comes before the directory it is in' });
    expect(decideEntry(h('src/a/b', 'file'), ctx())).toEqual({ refused: 'comes before the directory it is in' });
    expect(decideEntry(h('src/l/evil', 'file'), ctx([['', 'dir'], ['l', 'symlink']]))).toEqual({ refused: 'is under "src/l", a symlink made earlier from the archive' });
    expect(decideEntry(h('src/f/x', 'directory'), ctx([['', 'dir'], ['f', 'file']]))).toEqual({ refused: 'is under "src/f", which is a file' });
  });

  it('holds the top-level entry to what the source is', () => {
    expect(decideEntry(h('src', 'file'), ctx([]))).toEqual({ refused: 'is not a directory, but the source is one' });
    expect(decideEntry(h('src', 'symlink', { linkname: '/' }), ctx([]))).toEqual({ refused: 'is not a directory, but the source is one' });
    const file = ctx([], { top: 'f', topKind: 'file' });
    expect(decideEntry(h('f/', 'directory'), file)).toEqual({ refused: 'is a directory, but the source is a file' });
    expect(decideEntry(h('f', 'symlink', { linkname: 'g' }), file)).toMatchObject({ refused: expect.stringContaining('copied path itself') });
    expect(decideEntry(h('f/x', 'file'), ctx([['', 'file']], { top: 'f', topKind: 'file' }))).toEqual({ refused: 'is an extra entry (the source is one file)' });
  });

  it('refuses escaping symlinks, bad hard links and data on links', () => {
    expect(decideEntry(h('src/l', 'symlink', { linkname: '../../.ssh' }), ctx())).toMatchObject({ refused: expect.stringContaining('outside') });
    expect(decideEntry(h('src/h', 'link', { linkname: '/etc/shadow' }), ctx())).toEqual({ refused: 'is a hard link to "/etc/shadow", which is not a file made earlier from the archive' });
    expect(decideEntry(h('src/h', 'link', { linkname: 'src/../x' }), ctx())).toMatchObject({ refused: expect.stringContaining('hard link') });
    expect(decideEntry(h('src/h', 'link', { linkname: 'src/later' }), ctx())).toMatchObject({ refused: expect.stringContaining('hard link') });
    expect(decideEntry(h('src/h', 'link', { linkname: 'src' }), ctx())).toMatchObject({ refused: expect.stringContaining('hard link') });
    expect(decideEntry(h('src/h', 'link', { linkname: 'src/l' }), ctx([['', 'dir'], ['l', 'symlink']]))).toMatchObject({ refused: expect.stringContaining('hard link') });
    expect(decideEntry(h('src/l', 'symlink', { linkname: 'a', size: 5 }), ctx())).toEqual({ refused: 'is a symlink that carries data' });
  });

  it('refuses a file over the per-file limit before any of it is written, and a size that is not one', () => {
    expect(decideEntry(h('src/big', 'file', { size: 1001 }), ctx())).toEqual({ refused: 'is 1001 bytes, over the limit of 1000 bytes for one file (raise it with --max-file-size)' });
    expect(decideEntry(h('src/neg', 'file', { size: -1 }), ctx())).toEqual({ refused: 'has an invalid size' });
    expect(decideEntry(h('src/nan', 'file', { size: NaN }), ctx())).toEqual({ refused: 'has an invalid size' });
  });
});

describe('entryMode', () => {
  it('keeps permission bits only, with the umask applied', () => {
    expect(entryMode(0o755, 0o022)).toBe(0o755);
    expect(entryMode(0o600, 0o022)).toBe(0o600);
    expect(entryMode(0o4755, 0o022)).toBe(0o755);
    expect(entryMode(0o2775, 0o002)).toBe(0o775);
    expect(entryMode(0o1777, 0o022)).toBe(0o755);
    expect(entryMode(0o777, 0o077)).toBe(0o700);
    expect(entryMode(NaN, 0o022)).toBe(0o644);
  });
});
