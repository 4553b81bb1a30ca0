/**
 * Renders docs/api.md from the contract, so the document cannot drift from what the server
 * validates (a unit test compares the two). Run `node bin/run-ts.js vm/api/api-doc.ts --write`.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { methods } from './contract.ts';

const DOC_PATH = new URL('../../docs/api.md', import.meta.url);

function schemaText(schema: z.ZodType): string {
  const json = z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return JSON.stringify(json, null, 1).replace(/\n\s*/g, ' ');
}

export function renderApiDoc(): string {
  const rows = Object.entries(methods).map(([name, def]) => `### \`${name}\` — \`${def.http} ${def.path}\`\n\n${def.summary}\n\n- input: \`${schemaText(def.input)}\`\n- output: \`${schemaText(def.output)}\`\n`);
  return `# The daemon API (v1)

Generated from \`vm/api/contract.ts\` by \`node bin/run-ts.js vm/api/api-doc.ts --write\`; a unit test
fails when this file and the contract disagree.

## Transport and access

- **Unix socket** \`$SPRITELY_HOME/run/api.sock\` (mode 0600, dir 0700): the CLI, tests and agents.
  \`curl --unix-socket ~/.local/share/spritely/run/api.sock http://d/v1/sprites\`
- **Loopback TCP** \`127.0.0.1:PORT\` (port in \`$SPRITELY_HOME/api-port\`): needs
  \`Authorization: Bearer <token from $SPRITELY_HOME/api-token>\` or a browser login's token (HTTP:
  the same header; WebSockets: the subprotocols \`spritely.ui.v1, spritely.token.TOKEN\`). A browser
  logs in through \`POST /ui/login\`, \`/ui/identity\` and \`/ui/resume\` with the one-time code of
  \`ui.loginFile\` / \`ui.loginUrl\` — see docs/ui.md; there is no cookie. Requests with an \`Origin\`
  other than \`http://127.0.0.1:PORT\` or a \`Host\` other than \`127.0.0.1:PORT\`/\`localhost:PORT\` are
  refused with 403 (browser tokens: \`127.0.0.1:PORT\` only).
- Request bodies are JSON objects (at most 16 MiB); unknown fields are refused. Path parameters
  (\`:name\`) are sprite names (DNS labels).
- Errors: \`{"error": {"code": "...", "message": "..."}}\` with status 400 \`invalid_argument\`,
  401 \`unauthenticated\`, 403 \`permission_denied\`, 404 \`not_found\`, 405 \`method_not_allowed\`,
  409 \`already_exists\` / \`busy\` / \`failed_precondition\`, 413 \`payload_too_large\`,
  500 \`internal\`, 503 \`unavailable\`, 504 \`timeout\`, 507 \`resource_exhausted\`.

## Methods

${rows.join('\n')}
## Streams (WebSocket)

### \`/v1/events\`
Server → client JSON: first \`{"type":"hello","sprites":[…]}\`, then \`sprite.changed\` (\`sprite\`),
\`sprite.removed\` (\`name\`), \`checkpoints.changed\` (\`name\`, \`checkpoints\`), \`image.progress\` (\`image\`,
\`phase\`, \`message\`, \`fraction?\`) and \`relay.changed\` (\`relay\`: what \`relay.status\` answers; on every tunnel
state change — connecting, connected, backoff, unauthorized — and on every publish or unpublish) as they happen.
With remote hosts: \`hosts.changed\` (\`hosts\`: what \`hosts.list\` answers, on every state change) and
\`host.event\` (\`host\`, \`event\`: one of the events above from that host's daemon; a \`hello\` with its sprites
first, when it connects and when a window subscribes).

### Remote hosts: \`/v1/hosts/HOST/…\`
Every method and stream of a remote host is its own path with \`/v1/\` replaced by \`/v1/hosts/HOST/\`
(\`GET /v1/hosts/box/sprites\`, WS \`/v1/hosts/box/sprites/dev/exec\`): the local daemon checks access,
then passes it to that host's daemon over the host's one SSH connection (see docs/hosts.md). Only
\`sprites.url\` is rewritten (\`local\` becomes \`http://NAME.HOST.localhost:PORT/\` on this computer). A host
that is not connected is retried at once and waited for up to 20 s, then answered 503; a stream cut by a
lost connection ends with \`{"type":"error","code":"unavailable",…}\` (exec, terminal) and close code 1011.
A host's own \`/v1/hosts…\` and \`/v1/ui/…\` are refused (403).

### \`/v1/sprites/:name/exec\`
Client sends \`{"type":"start","argv":[…],"cwd"?,"env"?,"tty"?,"cols"?,"rows"?,"stdin"?}\` first
(\`stdin: false\` closes the command's stdin at once). Server binary frames: first byte 1 = stdout,
2 = stderr, then the bytes. Client binary frames: stdin bytes; text frames \`{"type":"eof"}\`,
\`{"type":"resize","cols","rows"}\`, \`{"type":"signal","signal":"TERM"}\`, \`{"type":"ack","bytes":N}\`
after writing N output bytes (the server pauses the command while more than 1 MiB is unacknowledged).
Server text frames: \`{"type":"started"}\`, \`{"type":"exit","code","signal"}\` (then the socket closes),
\`{"type":"error","code","message"}\`.

### \`/v1/sprites/:name/terminal?cols=&rows=[&session=ID]\`
Opens a login shell on a PTY (or re-attaches to session \`ID\`, replaying the newest 1 MiB of its
output). Server: \`{"type":"session","session":ID}\`, then binary output; \`{"type":"exit",…}\` when the
shell ends. Client: binary input; \`{"type":"resize","cols","rows"}\`, \`{"type":"ack","bytes":N}\` (output
pauses above 100 000 unacknowledged bytes, resumes below 5 000), \`{"type":"close"}\` to hang up. Closing
the socket only detaches; a session with nobody attached for 10 minutes is hung up.
`;
}

if (process.argv.includes('--write')) fs.writeFileSync(DOC_PATH, renderApiDoc());
