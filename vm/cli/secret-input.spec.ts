import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { firstLine, readSecret } from './secret-input.ts';

function pipe(text: string): NodeJS.ReadStream {
  const s = new PassThrough();
  s.end(text);
  return s as unknown as NodeJS.ReadStream;
}

describe('readSecret', () => {
  it('reads the first non-empty line of a file', async () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'secret-')), 't');
    fs.writeFileSync(f, '\n  srt_abc_123  \nignored\n', { mode: 0o600 });
    expect(await readSecret('relay token', { file: f, stdin: pipe('other') })).toBe('srt_abc_123');
  });

  it('reads piped stdin when no file is named', async () => {
    expect(await readSecret('relay token', { stdin: pipe('srt_piped\n') })).toBe('srt_piped');
  });

  it('refuses an empty answer, a missing file and an oversized stdin with a clear sentence', async () => {
    await expect(readSecret('relay token', { stdin: pipe('\n\n') })).rejects.toThrow(/No relay token given/);
    await expect(readSecret('relay token', { file: '/nonexistent/token' })).rejects.toThrow(/Could not read the relay token from \/nonexistent\/token/);
    await expect(readSecret('relay token', { stdin: pipe('x'.repeat(70_000)) })).rejects.toThrow(/longer than/);
  });

  it('firstLine trims and skips blank lines', () => {
    expect(firstLine('\r\n a \r\n b')).toBe('a');
    expect(firstLine('')).toBe('');
  });
});
