/**
 * The host's DNS, as the daemon's DNS responder asks it: a `dns.promises.Resolver` (c-ares), which
 * reads the servers in /etc/resolv.conf, appends no search domain and never reads the hosts file
 * — what comes back is what DNS says about that exact name. c-ares reads resolv.conf once, and a
 * laptop's resolv.conf changes with its network (Wi-Fi, VPN), so the resolver is built again when
 * the file changes (checked at most every CHECK_MS).
 */
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';

/** What the responder asks of a resolver: the subset of dns.promises.Resolver it uses. */
export interface UpstreamResolver {
  resolve4(name: string, options: { ttl: true }): Promise<dns.RecordWithTtl[]>;
  resolve6(name: string, options: { ttl: true }): Promise<dns.RecordWithTtl[]>;
  resolveCname(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
  resolveMx(name: string): Promise<dns.MxRecord[]>;
  resolveSrv(name: string): Promise<dns.SrvRecord[]>;
  resolveCaa(name: string): Promise<dns.CaaRecord[]>;
}

const RESOLV_CONF = '/etc/resolv.conf';
const CHECK_MS = 5000;
/** Per try; c-ares tries each server `tries` times. A guest's stub resolver waits 5 s. */
const TIMEOUT_MS = 2000;
const TRIES = 2;

/**
 * Servers named by SPRITELY_DNS_SERVERS (comma-separated `address` or `address:port`, IPv6 in
 * brackets), for a daemon that should not use resolv.conf's (a test's resolver, a resolver of the
 * user's choice): the valid entries, or null when the variable is unset or names none.
 */
export function dnsServersFromEnv(raw: string | undefined, log?: (line: string) => void): string[] | null {
  if (!raw?.trim()) return null;
  const ok: string[] = [];
  for (const item of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3}))(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[3] === undefined ? 53 : Number(m[3]);
    if (m && net.isIP(m[1] ?? m[2]) && port >= 1 && port <= 65535) ok.push(item);
    else log?.(`dns: ignoring ${JSON.stringify(item.slice(0, 100))} in SPRITELY_DNS_SERVERS: not an address or address:port`);
  }
  return ok.length ? ok : null;
}

export class HostResolver implements UpstreamResolver {
  private resolver: dns.promises.Resolver;
  private stamp: string;
  private checkedAt = 0;

  /** `servers`: ask these instead of resolv.conf's (which is then not watched). */
  constructor(
    private readonly file = RESOLV_CONF,
    private readonly servers: string[] | null = null,
  ) {
    this.stamp = this.read();
    this.resolver = this.build();
  }

  private build(): dns.promises.Resolver {
    const r = new dns.promises.Resolver({ timeout: TIMEOUT_MS, tries: TRIES });
    if (this.servers) r.setServers(this.servers);
    return r;
  }

  private read(): string {
    try {
      const st = fs.statSync(this.file);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return 'absent';
    }
  }

  /** The resolver for now: rebuilt when resolv.conf changed since it was built. */
  private current(): dns.promises.Resolver {
    const now = Date.now();
    if (!this.servers && now - this.checkedAt >= CHECK_MS) {
      this.checkedAt = now;
      const stamp = this.read();
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        this.resolver = this.build();
      }
    }
    return this.resolver;
  }

  resolve4(name: string, options: { ttl: true }): Promise<dns.RecordWithTtl[]> {
    return this.current().resolve4(name, options);
  }

  resolve6(name: string, options: { ttl: true }): Promise<dns.RecordWithTtl[]> {
    return this.current().resolve6(name, options);
  }

  resolveCname(name: string): Promise<string[]> {
    return this.current().resolveCname(name);
  }

  resolveTxt(name: string): Promise<string[][]> {
    return this.current().resolveTxt(name);
  }

  resolveMx(name: string): Promise<dns.MxRecord[]> {
    return this.current().resolveMx(name);
  }

  resolveSrv(name: string): Promise<dns.SrvRecord[]> {
    return this.current().resolveSrv(name);
  }

  resolveCaa(name: string): Promise<dns.CaaRecord[]> {
    return this.current().resolveCaa(name);
  }
}

let shared: HostResolver | null = null;

/** One host resolver for the daemon (its answers are cached per sprite by each responder). */
export function hostResolver(): HostResolver {
  return (shared ??= new HostResolver(RESOLV_CONF, dnsServersFromEnv(process.env.SPRITELY_DNS_SERVERS, (l) => console.error(l))));
}
