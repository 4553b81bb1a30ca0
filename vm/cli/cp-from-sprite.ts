/**
 * Sprite → here. The guest's GNU tar packs the source, but what arrives is whatever root in the
 * sprite chose to send, so this computer's tar never sees it: the stream is unpacked in Node
 * (tar-extract.ts) into one fresh 0700 directory beside the destination, then moved into place by
 * `docker cp`'s rules (cp-place.ts). On any refusal or failure the fresh directory is removed and
 * the destination is as it was.
 *
 * Memory stays bounded: each chunk of the guest's output is acknowledged to the daemon (which
 * pauses the guest's tar past 1 MiB unacknowledged) only once the extractor has consumed it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { ExecStream } from './agent-exec-stream.ts';
import { applyPlacement, checkTarget, planPlacement, type Target } from './cp-place.ts';
import { guestKinds, hostKind } from './cp-paths.ts';
import { guestCreateArgv, hostTarget, planCopy, tarFailed, type CopyResult, type PathSpec } from './cp-plan.ts';
import { TarExtractor, TarRefusal, TarTruncated, type ExtractedTree, type ExtractLimits } from './tar-extract.ts';

export interface ReceiveOptions {
  kind: 'file' | 'dir';
  /** The one top-level name the archive may hold (the source's base name, or "." for "SRC/."). */
  top: string;
  /** The path the copy becomes, or the existing directory it merges into. */
  target: string;
  /** `target` is the destination as typed: a symlink there to a directory is followed. */
  typed: boolean;
  limits: ExtractLimits;
  umask: number;
}

/** Prefix of the fresh directory's name; mkdtemp adds six random characters. */
export const TEMP_PREFIX = '.spritely-cp-';

/** One archive from a sprite on its way to its destination: bytes in, a placed tree out. */
export class TreeReceiver {
  readonly tempDir: string;
  private readonly extractor: TarExtractor;
  private readonly target: Target;
  private removed = false;

  constructor(private readonly opts: ReceiveOptions) {
    this.target = checkTarget(opts.kind, opts.target, opts.typed);
    try {
      this.tempDir = fs.mkdtempSync(path.join(this.target.tempParent, TEMP_PREFIX));
    } catch (err) {
      throw new SpritelyError('failed_precondition', `Cannot write into ${this.target.tempParent}: ${(err as Error).message}`);
    }
    this.extractor = new TarExtractor({ dir: this.tempDir, top: opts.top, topKind: opts.kind, limits: opts.limits, umask: opts.umask });
  }

  /** Rejects with the first refusal or write error. */
  get failed(): Promise<never> {
    return this.extractor.failed;
  }

  /** Resolves once the chunk is consumed. */
  write(chunk: Buffer): Promise<void> {
    return this.extractor.write(chunk);
  }

  /** The stream is complete: check it, place the tree, remove the fresh directory. */
  async finish(): Promise<ExtractedTree> {
    try {
      const tree = await this.extractor.end();
      applyPlacement(tree, planPlacement(tree, this.target), this.opts.umask);
      return tree;
    } finally {
      this.remove();
    }
  }

  /** The archive's own verdict once the stream is over, without placing anything (for a failed sender). */
  async verdict(): Promise<Error | null> {
    return this.extractor.end().then(
      () => null,
      (err: Error) => err,
    );
  }

  /** Stops and removes the fresh directory with everything in it (synchronous: safe in a signal handler). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.extractor.destroy();
    fs.rmSync(this.tempDir, { recursive: true, force: true });
  }
}

/** Sprite → here. */
export async function copyFromSprite(api: ApiClient, sprite: string, src: PathSpec, dst: PathSpec, opts: { limits: ExtractLimits; umask: number }): Promise<CopyResult> {
  const [srcKind] = await guestKinds(api, sprite, [{ path: src.abs, follow: src.trailingSlash }]);
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  const plan = planCopy(src, srcKind, dst, hostKind(dst.abs, true), hostKind(dst.dir, true));
  const target = hostTarget(plan, dst);
  const t0 = Date.now();
  const rx = new TreeReceiver({ kind: srcKind, top: plan.member, target: target.path, typed: target.typed, limits: opts.limits, umask: opts.umask });
  // Interrupted: leave nothing behind.
  const onSignal = (signal: NodeJS.Signals) => {
    rx.remove();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let received = 0;
  let remoteErr = '';
  const remote = new ExecStream(api, sprite, guestCreateArgv(plan), {
    onStdout: (d, consumed) => {
      received += d.length;
      rx.write(d).then(consumed, () => {});
    },
    onStderr: (d, consumed) => {
      if (remoteErr.length < 64_000) remoteErr += d.toString();
      consumed();
    },
  });
  try {
    const exit = await Promise.race([remote.finished, rx.failed]);
    if (exit.code !== 0) {
      // What the sprite sent breaking a rule says more than its tar's exit status; a stream cut
      // short is what a failing tar sends, so then its own message is the one to show.
      const verdict = await rx.verdict();
      if (verdict instanceof TarRefusal && !(verdict instanceof TarTruncated)) throw verdict;
      throw tarFailed(`in ${sprite}`, remoteErr.trim(), exit.code ?? exit.signal);
    }
    await rx.finish();
    return { bytes: received, ms: Date.now() - t0 };
  } catch (err) {
    remote.close();
    if (err instanceof TarRefusal) {
      throw new SpritelyError(err.code, `Refused what ${sprite} sent for ${src.shown}: ${err.message}. Nothing was copied to ${dst.shown}.`);
    }
    throw err;
  } finally {
    rx.remove();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
