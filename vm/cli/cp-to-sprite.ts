/**
 * Here → sprite: this computer's tar (GNU tar or bsdtar, portable flags only) packs the source,
 * the guest's GNU tar unpacks it (and renames the top-level entry with `--transform`), joined by
 * the daemon's exec stream. The guest's tar reports what it has read (`--checkpoint`) and no more
 * than CREDIT_WINDOW bytes are sent ahead of that, so memory stays bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { ExecStream } from './agent-exec-stream.ts';
import { guestKinds, hostKind } from './cp-paths.ts';
import { AckParser, CREDIT_WINDOW, RECORD_BYTES, guestExtractArgv, hostCreateArgv, planCopy, tarFailed, type CopyResult, type PathSpec } from './cp-plan.ts';

function spawnTar(args: string[]): ChildProcess {
  // COPYFILE_DISABLE: macOS's bsdtar would add AppleDouble "._" files for extended attributes.
  return spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, COPYFILE_DISABLE: '1' } });
}

function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.on('data', (c: Buffer) => {
    if (text.length < 64_000) text += c.toString();
  });
  return () => text.trim();
}

/** The exit code of a tar (a tar that could not start at all is a clear error, never an unhandled one). */
function exited(child: ChildProcess): Promise<number> {
  const done = new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new SpritelyError('failed_precondition', `Could not run tar on this computer: ${err.message}`)));
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  done.catch(() => {});
  return done;
}

/** Here → sprite. */
export async function copyToSprite(api: ApiClient, src: PathSpec, sprite: string, dst: PathSpec): Promise<CopyResult> {
  const srcKind = hostKind(src.abs, src.trailingSlash);
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  const [dstKind, parentKind] = await guestKinds(api, sprite, [{ path: dst.abs, follow: true }, { path: dst.dir, follow: true }]);
  const plan = planCopy(src, srcKind, dst, dstKind, parentKind);
  const t0 = Date.now();
  let sent = 0;
  let read = 0;
  let waiting = false;
  const tar = spawnTar(hostCreateArgv(plan));
  const tarErr = collect(tar.stderr);
  const tarDone = exited(tar);
  const acks = new AckParser((records) => {
    read = Math.max(read, records * RECORD_BYTES);
    if (waiting && sent - read < CREDIT_WINDOW / 2) {
      waiting = false;
      tar.stdout!.resume();
    }
  });
  const remote = new ExecStream(api, sprite, guestExtractArgv(plan), {
    stdin: true,
    onStderr: (d, consumed) => {
      acks.push(d);
      consumed();
    },
  });
  // Node resumes a child's output streams when the child exits, paused or not: what comes before
  // the command runs in the sprite is queued (a small archive can be complete by then; a large one
  // waits in the pipe because the stream is paused).
  let live = false;
  let ended = false;
  let remoteDone = false;
  const early: Buffer[] = [];
  const forward = (chunk: Buffer) => {
    sent += chunk.length;
    remote.send(chunk);
    if (sent - read > CREDIT_WINDOW) {
      waiting = true;
      tar.stdout!.pause();
    }
  };
  tar.stdout!.on('data', (chunk: Buffer) => {
    if (remoteDone) return;
    if (live) forward(chunk);
    else early.push(chunk);
  });
  tar.stdout!.pause();
  tar.stdout!.on('end', () => (live ? remote.eof() : (ended = true)));
  try {
    await remote.started;
  } catch (err) {
    tar.kill();
    throw err;
  }
  live = true;
  for (const chunk of early.splice(0)) forward(chunk);
  if (ended) remote.eof();
  else if (!waiting) tar.stdout!.resume();
  let exit;
  try {
    exit = await remote.finished;
  } catch (err) {
    tar.kill();
    throw err;
  }
  acks.end();
  if (exit.code !== 0) {
    tar.kill();
    await tarDone.catch(() => {});
    throw tarFailed(`in ${sprite}`, acks.text(), exit.code ?? exit.signal);
  }
  // The guest's tar stops at the end-of-archive marker; let this side's tar finish (its exit code
  // still counts: a file it could not read is an error even if the rest arrived).
  remoteDone = true;
  tar.stdout!.resume();
  const localCode = await tarDone;
  if (localCode !== 0) throw tarFailed('on this computer', tarErr(), localCode);
  return { bytes: sent, ms: Date.now() - t0 };
}

