/**
 * Secrets the CLI takes (a relay's tunnel token) never come from its command line: every local
 * user can read every process's argv in /proc. They come from a file, from standard input when it
 * is piped, or from a prompt that does not echo.
 */
import fs from 'node:fs';
import { SpritelyError } from '../errors.ts';

/** Reads the secret from `file`, else piped stdin, else a hidden prompt on the terminal. */
export async function readSecret(what: string, opts: { file?: string; stdin?: NodeJS.ReadStream; stderr?: NodeJS.WriteStream } = {}): Promise<string> {
  const stdin = opts.stdin ?? process.stdin;
  let text: string;
  if (opts.file) {
    try {
      text = fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new SpritelyError('invalid_argument', `Could not read the ${what} from ${opts.file}: ${(err as Error).message}.`);
    }
  } else if (!stdin.isTTY) {
    text = await readAll(stdin);
  } else {
    text = await prompt(`${what}: `, stdin, opts.stderr ?? process.stderr);
  }
  const secret = firstLine(text);
  if (!secret) throw new SpritelyError('invalid_argument', `No ${what} given (pass it with --token-file FILE, pipe it on stdin, or type it at the prompt).`);
  return secret;
}

/** The first non-empty line, trimmed (a file or a pipe may end with a newline). */
export function firstLine(text: string): string {
  return text.split(/\r?\n/).map((l) => l.trim()).find((l) => l) ?? '';
}

async function readAll(stream: NodeJS.ReadableStream, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    size += b.length;
    if (size > limit) throw new SpritelyError('invalid_argument', `Standard input is longer than ${limit} bytes; expected one token.`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function prompt(question: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(question);
    stdin.setRawMode?.(true);
    stdin.resume();
    let typed = '';
    const done = (value: string | Error) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      stderr.write('\n');
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(typed);
        if (ch === '\u0003') return done(new SpritelyError('invalid_argument', 'Cancelled: no token was given.'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
