/**
 * The MCP tools that work inside a sprite: exec (with an optional checkpoint first) and reading,
 * writing and listing files, each a thin wrapper over the daemon's exec.
 */
import { z } from 'zod';
import { methods } from '../api/contract.ts';
import { SpritelyError } from '../errors.ts';
import { buildExecRequest, checkpointComment, DEFAULT_EXEC_OUTPUT_BYTES, DEFAULT_EXEC_TIMEOUT_MS, formatExecResult, MAX_EXEC_OUTPUT_BYTES, shapeExecResult, type ExecToolResult } from './exec-tool.ts';
import { contentBytes, DEFAULT_READ_BYTES, formatList, listRequest, MAX_READ_BYTES, MAX_WRITE_BYTES, parseList, parseRead, parseWrite, readRequest, writeRequest } from './files.ts';
import { SLEEP_NOTE, checkName, name, ok, type ToolContext } from './tool-kit.ts';

export function registerExecFileTools({ server, daemon, run }: ToolContext): void {
  // ---------------------------------------------------------------- exec

  server.registerTool(
    'exec',
    {
      title: 'Run a command in a sprite',
      description: [
        'Run a command in a sprite as root and wait for it to finish; returns the exit code, stdout, stderr (UTF-8) and whether it timed out or its output was cut.',
        'Give either `command`, a shell command line run with `bash -lc` (pipes, &&, redirections, globs work), or `argv`, the program and its arguments passed as they are (no shell: nothing is expanded or needs quoting).',
        'The working directory is /root unless `cwd` is given. There is no terminal and stdin is empty unless `stdin` is given, so use non-interactive flags (apt-get -y, DEBIAN_FRONTEND=noninteractive).',
        `A command still running after timeout_ms (default ${DEFAULT_EXEC_TIMEOUT_MS / 1000} s) is killed; start servers and other long-running programs in the background (nohup … >/tmp/log 2>&1 &) and check on them with further calls.`,
        `Each stream keeps its first max_output_bytes (default ${DEFAULT_EXEC_OUTPUT_BYTES}); for long output, pipe through tail/grep or write it to a file.`,
        `Set checkpoint_before (true, or a comment) before risky commands: a checkpoint of the whole machine is taken first and its id returned, so checkpoint_restore can undo everything the command did.`,
        SLEEP_NOTE,
        'Network: DNS and any TCP connection, decided on the host by the sprite\'s policy (see sprite_create); UDP other than DNS is refused.',
      ].join(' '),
      inputSchema: {
        name,
        command: z.string().optional().describe('A shell command line, run as ["bash", "-lc", command]. Use this or argv.'),
        argv: z.array(z.string()).optional().describe('The program and its arguments, run without a shell, e.g. ["python3", "-c", "print(1)"]. Use this or command.'),
        cwd: z.string().optional().describe('Working directory in the sprite (default /root).'),
        env: z.record(z.string(), z.string()).optional().describe('Extra environment variables, e.g. {"DEBUG": "1"}.'),
        stdin: z.string().optional().describe('Text to feed to the command\'s standard input (at most 8 MiB).'),
        timeout_ms: z.number().int().min(1).max(86_400_000).optional().describe(`Kill the command after this many milliseconds (default ${DEFAULT_EXEC_TIMEOUT_MS}).`),
        max_output_bytes: z.number().int().min(0).max(MAX_EXEC_OUTPUT_BYTES).optional().describe(`Keep at most this many bytes of stdout and of stderr each (default ${DEFAULT_EXEC_OUTPUT_BYTES}).`),
        checkpoint_before: z.union([z.boolean(), z.string()]).optional().describe('Take a checkpoint of the whole sprite before running: true (comment "before: <command>") or the comment to use. Its id is returned; checkpoint_restore undoes the command.'),
      },
      outputSchema: {
        ...methods['sprites.exec'].output.shape,
        exitCode: z.number().nullable().describe('null when killed by a signal or timed out'),
        checkpoint: z.string().nullable().describe('the checkpoint taken before running (checkpoint_before), else null'),
      },
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (a, extra) =>
      run(extra, 'exec', async () => {
        checkName(a.name);
        const plan = buildExecRequest(a);
        const comment = checkpointComment(a);
        let checkpoint: string | null = null;
        if (comment !== null) checkpoint = (await daemon.call('checkpoints.create', { name: a.name, comment })).checkpoint.id;
        let r;
        try {
          r = shapeExecResult(await daemon.call('sprites.exec', plan.req, { timeoutMs: (plan.req.timeoutMs ?? 0) + 120_000 }), plan);
        } catch (err) {
          if (checkpoint && err instanceof SpritelyError) throw new SpritelyError(err.code, `${err.message} (checkpoint ${checkpoint} had been taken before.)`);
          throw err;
        }
        const result: ExecToolResult = { ...r, checkpoint };
        return ok(formatExecResult(result, plan), {
          exitCode: result.exitCode,
          signal: result.signal,
          stdout: result.stdout,
          stderr: result.stderr,
          truncated: result.truncated,
          timedOut: result.timedOut,
          durationMs: result.durationMs,
          checkpoint,
        });
      }),
  );

  // ---------------------------------------------------------------- files

  const path = z.string().describe('Path in the sprite; absolute, or relative to /root.');

  server.registerTool(
    'file_read',
    {
      title: 'Read a file in a sprite',
      description: `Read a file in a sprite. Text (UTF-8) comes back as it is; anything else as base64 (encoding says which). Files larger than max_bytes (default ${DEFAULT_READ_BYTES}, at most ${MAX_READ_BYTES}) are refused with their size: read parts of big files with exec (head, tail, sed -n, grep). ${SLEEP_NOTE}`,
      inputSchema: { name, path, max_bytes: z.number().int().min(1).max(MAX_READ_BYTES).optional().describe(`Refuse files larger than this (default ${DEFAULT_READ_BYTES}).`) },
      outputSchema: { path: z.string(), encoding: z.enum(['utf8', 'base64']), size: z.number(), content: z.string() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'file_read', async () => {
        const max = a.max_bytes ?? DEFAULT_READ_BYTES;
        const req = readRequest(checkName(a.name), a.path, max);
        const r = parseRead(a.name, a.path, max, await daemon.call('sprites.exec', req, { timeoutMs: 300_000 }));
        return ok(r.content, { ...r });
      }),
  );

  server.registerTool(
    'file_write',
    {
      title: 'Write a file in a sprite',
      description: `Write a whole file in a sprite (created, or replaced if it exists), creating missing parent directories. content is text (encoding "utf8", the default) or base64 for binary data (encoding "base64"). At most ${MAX_WRITE_BYTES / 1024 / 1024} MiB per call. mode sets permission bits, e.g. "755" for a script. Overwrites without asking: checkpoint first when replacing something you may need back.`,
      inputSchema: {
        name,
        path,
        content: z.string().describe('The file\'s whole content.'),
        encoding: z.enum(['utf8', 'base64']).optional().describe('How content is written: "utf8" text (default) or "base64" bytes.'),
        mode: z.string().optional().describe('Octal permission bits, e.g. "644" or "755" (default: 644 for a new file, unchanged for an existing one).'),
      },
      outputSchema: { path: z.string(), bytes: z.number(), mode: z.string() },
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'file_write', async () => {
        const bytes = contentBytes(a.content, a.encoding ?? 'utf8');
        const req = writeRequest(checkName(a.name), a.path, bytes, a.mode);
        const r = parseWrite(a.name, a.path, await daemon.call('sprites.exec', req, { timeoutMs: 300_000 }));
        return ok(`Wrote ${r.bytes} bytes to ${r.path} (mode ${r.mode}).`, { ...r });
      }),
  );

  server.registerTool(
    'file_list',
    {
      title: 'List a directory in a sprite',
      description: 'List a directory in a sprite: each entry\'s name, type (file, directory, symlink, …), size in bytes, permission bits, modification time and, for symlinks, the target. Not recursive: for a tree or a search use exec with find or ls -R. At most 1000 entries, sorted by name.',
      inputSchema: { name, path },
      outputSchema: {
        path: z.string(),
        entries: z.array(z.object({ name: z.string(), type: z.string(), size: z.number(), mode: z.string(), mtime: z.string(), target: z.string().nullable() })),
        total: z.number(),
        truncated: z.boolean(),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (a, extra) =>
      run(extra, 'file_list', async () => {
        const req = listRequest(checkName(a.name), a.path);
        const l = parseList(a.name, a.path, await daemon.call('sprites.exec', req, { timeoutMs: 300_000 }));
        return ok(formatList(l), { ...l });
      }),
  );
}
