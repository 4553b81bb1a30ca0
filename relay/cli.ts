/**
 * `spritely-relay`: run a relay (`serve`) and manage its tunnel tokens (`token add|list|revoke`).
 * The relay is its own deployable: relay/ needs only Node's built-ins, zod, commander and ipaddr.js —
 * no Electron, no QEMU.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { jsonLinesLog } from './log.ts';
import { DEFAULT_LIMITS, parseByteSize, parseDomain, parseDuration, parseListen, type RelayLimits } from './relay-config.ts';
import { startRelay } from './relay-server.ts';
import { addAccountToken, readTokenFile, revokeAccount, writeTokenFile } from './token-store.ts';

function option<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

const count = option((value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${value}`);
  return n;
});

const program = new Command('spritely-relay').description('Public HTTPS URLs for sprites, through tunnels their daemons dial out to.');

program
  .command('serve')
  .description('run the relay')
  .requiredOption('--domain <domain>', 'sprites are served at <sprite>-<suffix>.<domain>; tunnels connect to <domain>', option(parseDomain))
  .requiredOption('--tokens <file>', 'tokens file (see `token add`)')
  .option('--listen <host:port>', 'address to listen on', option(parseListen), { host: '0.0.0.0', port: 443 })
  .option('--tls-cert <file>', 'certificate chain (PEM) for <domain> and *.<domain>')
  .option('--tls-key <file>', 'private key (PEM)')
  .option('--plain', 'serve plain HTTP behind a TLS proxy, trusting its X-Forwarded-For/-Proto')
  .option('--max-body <size>', 'largest request body', option(parseByteSize), DEFAULT_LIMITS.maxBodyBytes)
  .option('--max-header <size>', 'largest request head', option(parseByteSize), DEFAULT_LIMITS.maxHeaderBytes)
  .option('--max-streams <n>', 'in-flight requests per tunnel', count, DEFAULT_LIMITS.maxStreamsPerTunnel)
  .option('--hold-timeout <duration>', 'how long a request waits for a waking sprite', option(parseDuration), DEFAULT_LIMITS.holdTimeoutMs)
  .option('--headers-timeout <duration>', 'time a client has to send its request head', option(parseDuration), DEFAULT_LIMITS.headersTimeoutMs)
  .option('--idle-timeout <duration>', 'close connections idle this long', option(parseDuration), DEFAULT_LIMITS.idleTimeoutMs)
  .option('--rate <n>', 'requests per second per client: IPv4 address or IPv6 /64 (0: off)', count, DEFAULT_LIMITS.ratePerSecond)
  .option('--burst <n>', 'burst per client', count, DEFAULT_LIMITS.rateBurst)
  .action(async (opts) => {
    if (!opts.plain && (!opts.tlsCert || !opts.tlsKey)) {
      program.error('serve needs --tls-cert and --tls-key, or --plain behind a TLS proxy');
    }
    if (opts.plain && (opts.tlsCert || opts.tlsKey)) program.error('--plain and --tls-cert/--tls-key exclude each other');
    const limits: Partial<RelayLimits> = {
      maxBodyBytes: opts.maxBody,
      maxHeaderBytes: opts.maxHeader,
      maxStreamsPerTunnel: opts.maxStreams,
      holdTimeoutMs: opts.holdTimeout,
      headersTimeoutMs: opts.headersTimeout,
      idleTimeoutMs: opts.idleTimeout,
      ratePerSecond: opts.rate,
      rateBurst: opts.burst,
    };
    const relay = await startRelay({
      domain: opts.domain,
      host: opts.listen.host,
      port: opts.listen.port,
      tls: opts.plain ? undefined : { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) },
      trustProxy: Boolean(opts.plain),
      tokensFile: opts.tokens,
      limits,
      log: jsonLinesLog,
    });
    process.stdout.write(`spritely-relay listening on ${opts.listen.host}:${relay.port} for ${opts.domain}\n`);
    const stop = () => void relay.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // SIGHUP: re-read the tokens file and the certificate (after a renewal), keeping every tunnel.
    process.on('SIGHUP', () => {
      relay.reloadTokens();
      if (!opts.plain) {
        try {
          relay.reloadTls({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) });
        } catch (error) {
          jsonLinesLog('error', 'could not reload the certificate', { error: (error as Error).message });
        }
      }
    });
  });

const token = program.command('token').description('manage tunnel tokens (one account per installation)');

token
  .command('add <name>')
  .description('create an account (or re-issue a revoked one, same URL suffix) and print its tunnel token once')
  .requiredOption('--tokens <file>', 'tokens file')
  .action((name: string, opts: { tokens: string }) => {
    const result = addAccountToken(readTokenFile(opts.tokens), name, new Date());
    writeTokenFile(opts.tokens, result.file);
    process.stderr.write(`account ${name}: URLs end in -${result.account.suffix}. The token is shown only once:\n`);
    process.stdout.write(`${result.token}\n`);
  });

token
  .command('list')
  .description('list accounts')
  .requiredOption('--tokens <file>', 'tokens file')
  .action((opts: { tokens: string }) => {
    const { accounts } = readTokenFile(opts.tokens);
    if (accounts.length === 0) return void process.stdout.write('no accounts\n');
    for (const account of accounts) {
      const status = account.tokenHash ? 'active' : `revoked ${account.revokedAt ?? ''}`;
      process.stdout.write(`${account.name}\t${account.suffix}\t${status}\tcreated ${account.createdAt}\n`);
    }
  });

token
  .command('revoke <name>')
  .description("revoke an account's token; a running relay cuts its tunnel at once")
  .requiredOption('--tokens <file>', 'tokens file')
  .action((name: string, opts: { tokens: string }) => {
    writeTokenFile(opts.tokens, revokeAccount(readTokenFile(opts.tokens), name, new Date()));
    process.stdout.write(`revoked ${name}\n`);
  });

program.parseAsync(process.argv).catch((error: Error) => {
  process.stderr.write(`spritely-relay: ${error.message}\n`);
  process.exit(1);
});
