/**
 * A tiny authoritative DNS server on 127.0.0.1 (a random UDP port) for the specs and bench/dns.ts:
 * a real `dns.promises.Resolver` pointed at it exercises the responder's upstream path without a
 * query ever leaving this machine. Not used by the daemon. Also a reader for DNS answers, so the
 * specs can check what the responder sends. Built on dns-message.ts (the answers own every record
 * by the question name, which is all a zone of plain names needs).
 */
import dgram from 'node:dgram';
import { buildResponse, parseQuery, QTYPE, RCODE, type AnswerRecord, type Rcode } from './dns-message.ts';

export interface TestZoneEntry {
  A?: Array<{ address: string; ttl: number }>;
  AAAA?: Array<{ address: string; ttl: number }>;
  TXT?: string[][];
  MX?: Array<{ preference: number; exchange: string }>;
  SRV?: Array<{ priority: number; weight: number; port: number; target: string }>;
  CAA?: Array<{ critical: boolean; tag: string; value: string }>;
  CNAME?: string;
  /** Answer every query for the name with this rcode (SERVFAIL, REFUSED …). */
  rcode?: Rcode;
  /** Never answer (the resolver times out). */
  silent?: boolean;
}

export class TestDnsServer {
  readonly queries: Array<{ name: string | null; qtype: number }> = [];
  private socket = dgram.createSocket('udp4');
  port = 0;

  /** `zone`: lower-case names; a name not in it is NXDOMAIN. */
  constructor(public zone: Record<string, TestZoneEntry>) {}

  async start(): Promise<this> {
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.port = this.socket.address().port;
    return this;
  }

  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  close(): void {
    this.socket.close();
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const p = parseQuery(msg);
    if (p.kind !== 'query') return;
    const q = p.query;
    this.queries.push({ name: q.question.name, qtype: q.question.qtype });
    const entry = q.question.name === null ? undefined : this.zone[q.question.name];
    if (entry?.silent) return;
    let rcode: Rcode = entry ? (entry.rcode ?? RCODE.NOERROR) : RCODE.NXDOMAIN;
    const answers: AnswerRecord[] = [];
    if (entry && rcode === RCODE.NOERROR) {
      const t = q.question.qtype;
      if (t === QTYPE.A) for (const a of entry.A ?? []) answers.push({ type: 'A', ...a });
      if (t === QTYPE.AAAA) for (const a of entry.AAAA ?? []) answers.push({ type: 'AAAA', ...a });
      if (t === QTYPE.TXT) for (const s of entry.TXT ?? []) answers.push({ type: 'TXT', strings: s, ttl: 60 });
      if (t === QTYPE.MX) for (const m of entry.MX ?? []) answers.push({ type: 'MX', ...m, ttl: 60 });
      if (t === QTYPE.SRV) for (const s of entry.SRV ?? []) answers.push({ type: 'SRV', ...s, ttl: 60 });
      if (t === QTYPE.CAA) for (const c of entry.CAA ?? []) answers.push({ type: 'CAA', ...c, ttl: 60 });
      if (t === QTYPE.CNAME && entry.CNAME) answers.push({ type: 'CNAME', target: entry.CNAME, ttl: 60 });
    }
    if (rcode === RCODE.NOERROR && !entry) rcode = RCODE.NXDOMAIN;
    const out = buildResponse({ id: q.id, rd: q.rd, rcode, question: q.question, edns: q.edns !== null, answers, maxBytes: 4096 });
    this.socket.send(out, rinfo.port, rinfo.address);
  }
}

export interface ReadAnswer {
  id: number;
  flags: { qr: boolean; opcode: number; aa: boolean; tc: boolean; rd: boolean; ra: boolean; cd: boolean };
  /** With the extended bits of an OPT record, when there is one. */
  rcode: number;
  questions: number;
  /** The question section's bytes (from offset 12), when there is one. */
  question: Uint8Array | null;
  answers: Array<{ type: number; ttl: number; data: string }>;
  /** The OPT record's UDP size, or null without one. */
  ednsSize: number | null;
}

/**
 * Reads a DNS answer (for specs: it trusts its input to be small, and follows compression
 * pointers a bounded number of times). Record data as text: A/AAAA addresses, TXT strings joined
 * by "|", MX "pref name", SRV "prio weight port name", CAA "flags tag value", CNAME a name.
 */
export function readAnswer(b: Uint8Array): ReadAnswer {
  const u16 = (at: number) => (b[at] << 8) | b[at + 1];
  const u32 = (at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  const name = (at: number): [string, number] => {
    const labels: string[] = [];
    let end = -1;
    for (let hops = 0; hops < 20; hops++) {
      const len = b[at];
      if (len === undefined) throw new Error('name runs past the message');
      if ((len & 0xc0) === 0xc0) {
        if (end < 0) end = at + 2;
        at = ((len & 0x3f) << 8) | b[at + 1];
        continue;
      }
      if (len === 0) return [labels.join('.'), end < 0 ? at + 1 : end];
      labels.push(Buffer.from(b.subarray(at + 1, at + 1 + len)).toString('latin1'));
      at += 1 + len;
      hops--;
    }
    throw new Error('too many compression pointers');
  };
  const flags = u16(2);
  let at = 12;
  let question: Uint8Array | null = null;
  const qd = u16(4);
  for (let i = 0; i < qd; i++) {
    const [, end] = name(at);
    question = b.slice(at, end + 4);
    at = end + 4;
  }
  const answers: ReadAnswer['answers'] = [];
  let ednsSize: number | null = null;
  let extended = 0;
  const total = u16(6) + u16(8) + u16(10);
  for (let i = 0; i < total; i++) {
    const [, end] = name(at);
    const type = u16(end);
    const cls = u16(end + 2);
    const ttl = u32(end + 4);
    const len = u16(end + 8);
    const d = end + 10;
    const rd = b.subarray(d, d + len);
    at = d + len;
    if (type === QTYPE.OPT) {
      ednsSize = cls;
      extended = ttl >>> 24;
      continue;
    }
    let data = '';
    if (type === QTYPE.A) data = Array.from(rd).join('.');
    else if (type === QTYPE.AAAA) data = Array.from({ length: 8 }, (_, k) => ((rd[2 * k] << 8) | rd[2 * k + 1]).toString(16)).join(':');
    else if (type === QTYPE.TXT) {
      const parts: string[] = [];
      for (let k = 0; k < rd.length; k += 1 + rd[k]) parts.push(Buffer.from(rd.subarray(k + 1, k + 1 + rd[k])).toString('latin1'));
      data = parts.join('|');
    } else if (type === QTYPE.MX) data = `${u16(d)} ${name(d + 2)[0]}`;
    else if (type === QTYPE.SRV) data = `${u16(d)} ${u16(d + 2)} ${u16(d + 4)} ${name(d + 6)[0]}`;
    else if (type === QTYPE.CAA) data = `${rd[0]} ${Buffer.from(rd.subarray(2, 2 + rd[1])).toString('latin1')} ${Buffer.from(rd.subarray(2 + rd[1])).toString('latin1')}`;
    else if (type === QTYPE.CNAME) data = name(d)[0];
    if (i < u16(6)) answers.push({ type, ttl, data });
  }
  return {
    id: u16(0),
    flags: { qr: !!(flags & 0x8000), opcode: (flags >> 11) & 0xf, aa: !!(flags & 0x400), tc: !!(flags & 0x200), rd: !!(flags & 0x100), ra: !!(flags & 0x80), cd: !!(flags & 0x10) },
    rcode: (extended << 4) | (flags & 0xf),
    questions: qd,
    question,
    answers,
    ednsSize,
  };
}

/** A query as a stub resolver sends it: one question, RD set, optionally an EDNS OPT. */
export function makeQuery(name: string, qtype: number, opts: { id?: number; edns?: number; qclass?: number } = {}): Uint8Array {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: number[] = [(opts.id ?? 0x1234) >> 8, (opts.id ?? 0x1234) & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, opts.edns ? 1 : 0];
  for (const l of labels) parts.push(l.length, ...Buffer.from(l, 'latin1'));
  parts.push(0, qtype >> 8, qtype & 0xff, (opts.qclass ?? 1) >> 8, (opts.qclass ?? 1) & 0xff);
  if (opts.edns) parts.push(0, 0, 41, opts.edns >> 8, opts.edns & 0xff, 0, 0, 0, 0, 0, 0);
  return Uint8Array.from(parts);
}
