/**
 * DNS messages as a guest sends them, read strictly, and the daemon's answers. The guest is
 * hostile: a query is parsed in one bounded pass (no loops over pointers, no recursion), and
 * anything that is not exactly one plain question, with at most one EDNS OPT record beside it, is
 * a FORMERR answer or is dropped — never an exception, never more work than the packet's length.
 *   accepted — a header with QR=0, OPCODE=QUERY, TC=0, QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT≤1;
 *              one question whose name is uncompressed labels of 1–63 octets, ≤ 255 octets in
 *              all (a compression pointer in a query has nothing before it worth pointing at);
 *              an additional record only if it is EDNS(0) OPT with the root name and options
 *              that fill its RDATA exactly; nothing after the last record.
 *   dropped  — fewer than 12 octets (no ID to answer to) and responses (QR=1: answering answers
 *              is how two resolvers loop).
 *   NOTIMP   — any OPCODE but QUERY; BADVERS — an EDNS version other than 0.
 * Answers echo the question as it came (case included: resolvers that randomise case check it),
 * own every record by the question name (one compression pointer, 0xC00C), and fit the size the
 * client can take: address records that do not fit are left out (a subset of addresses is still
 * a correct answer, and a TC bit would send the client to DNS over TCP for nothing), other data
 * that does not fit is a TC answer with no records. CNAME chains are not kept: the host's
 * resolver follows them and the guest gets the final addresses under the name it asked for.
 */
import { canonicalAddress } from './address.ts';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, SVCB: 64, HTTPS: 65, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257 } as const;
export const CLASS_IN = 1;

/** Larger than any honest query (one question, an OPT with a cookie and padding). */
export const MAX_QUERY_BYTES = 1024;
/** Classic DNS over UDP without EDNS (RFC 1035 §4.2.1). */
export const UDP_PLAIN_MAX = 512;
/** What we advertise and the most we send over UDP: the DNS flag day 2020 size, no fragmentation. */
export const UDP_EDNS_MAX = 1232;
/** RFC 2181 §8: a TTL is at most 2^31 - 1. */
const TTL_MAX = 0x7fffffff;

export interface Question {
  /**
   * The name in lower case without the final dot ('' for the root), or null when a label holds an
   * octet outside letters, digits, '-' and '_' (no host name does; the responder refuses it).
   */
  name: string | null;
  /** The name for logs and messages: lower case, odd octets as \DDD, as dig prints them. */
  display: string;
  qtype: number;
  qclass: number;
  /** The question section exactly as received, echoed in the answer. */
  wire: Uint8Array;
}

export interface Edns {
  /** The client's UDP payload size (values under 512 read as 512). */
  udpSize: number;
  dnssecOk: boolean;
}

export interface Query {
  id: number;
  /** Recursion desired and checking disabled, echoed in the answer. */
  rd: boolean;
  cd: boolean;
  question: Question;
  edns: Edns | null;
}

export type ParsedQuery =
  | { kind: 'query'; query: Query }
  /** Answer with `rcode` (and the question, when it was read); `reason` is for tests and logs. */
  | { kind: 'error'; rcode: Rcode; id: number; rd: boolean; opcode: number; question: Question | null; edns: boolean; reason: string }
  | { kind: 'drop'; reason: string };

class Malformed extends Error {}

/** Reads one query. Never throws: every input is a query, an error to answer, or a drop. */
export function parseQuery(packet: Uint8Array): ParsedQuery {
  if (packet.length < 12) return { kind: 'drop', reason: `a DNS message has a 12-octet header; got ${packet.length} octets` };
  const id = (packet[0] << 8) | packet[1];
  const flags = (packet[2] << 8) | packet[3];
  if (flags & 0x8000) return { kind: 'drop', reason: 'a response (QR=1), not a query' };
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  const cd = (flags & 0x0010) !== 0;
  const fail = (rcode: Rcode, reason: string, question: Question | null = null, edns = false): ParsedQuery => ({ kind: 'error', rcode, id, rd, opcode, question, edns, reason });
  if (opcode !== 0) return fail(RCODE.NOTIMP, `opcode ${opcode} is not QUERY`);
  if (packet.length > MAX_QUERY_BYTES) return fail(RCODE.FORMERR, `a query of ${packet.length} octets (at most ${MAX_QUERY_BYTES})`);
  if (flags & 0x0200) return fail(RCODE.FORMERR, 'a truncated query (TC=1)');
  const qd = u16(packet, 4);
  const an = u16(packet, 6);
  const ns = u16(packet, 8);
  const ar = u16(packet, 10);
  if (qd !== 1) return fail(RCODE.FORMERR, `${qd} questions (exactly one is answered)`);
  if (an !== 0 || ns !== 0) return fail(RCODE.FORMERR, 'answer or authority records in a query');
  if (ar > 1) return fail(RCODE.FORMERR, `${ar} additional records (at most one EDNS OPT)`);
  let question: Question;
  let at: number;
  try {
    [question, at] = readQuestion(packet, 12);
  } catch (err) {
    return fail(RCODE.FORMERR, (err as Error).message);
  }
  let edns: Edns | null = null;
  if (ar === 1) {
    try {
      const opt = readOpt(packet, at);
      at = opt.end;
      if (opt.version !== 0) return fail(RCODE.BADVERS, `EDNS version ${opt.version} (only 0)`, question, true);
      edns = { udpSize: Math.max(UDP_PLAIN_MAX, opt.udpSize), dnssecOk: opt.dnssecOk };
    } catch (err) {
      return fail(RCODE.FORMERR, (err as Error).message, question);
    }
  }
  if (at !== packet.length) return fail(RCODE.FORMERR, `${packet.length - at} octets after the last record`, question, edns !== null);
  return { kind: 'query', query: { id, rd, cd, question, edns } };
}

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function need(b: Uint8Array, at: number, n: number, what: string): void {
  if (at + n > b.length) throw new Malformed(`the message ends inside ${what}`);
}

const HOST_OCTET = new Uint8Array(256);
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789-_') HOST_OCTET[c.charCodeAt(0)] = 1;

function readQuestion(b: Uint8Array, start: number): [Question, number] {
  let at = start;
  const labels: string[] = [];
  const shown: string[] = [];
  let hostLike = true;
  for (;;) {
    need(b, at, 1, 'the question name');
    const len = b[at];
    if (len === 0) {
      at++;
      break;
    }
    if ((len & 0xc0) === 0xc0) throw new Malformed('a compression pointer in the question (queries are not compressed)');
    if (len & 0xc0) throw new Malformed(`label type 0x${(len & 0xc0).toString(16)} (only plain labels)`);
    need(b, at, 1 + len, 'a label');
    let text = '';
    let show = '';
    for (let i = at + 1; i <= at + len; i++) {
      let c = b[i];
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (HOST_OCTET[c]) {
        text += String.fromCharCode(c);
        show += String.fromCharCode(c);
      } else {
        hostLike = false;
        show += `\\${String(c).padStart(3, '0')}`;
      }
    }
    labels.push(text);
    shown.push(show);
    at += 1 + len;
    // RFC 1035 §3.1: the whole name, length octets and the final zero included, is at most 255
    if (at + 1 - start > 255) throw new Malformed('a question name longer than 255 octets');
  }
  need(b, at, 4, 'the question type and class');
  const qtype = u16(b, at);
  const qclass = u16(b, at + 2);
  at += 4;
  const display = shown.join('.') || '.';
  return [{ name: hostLike ? labels.join('.') : null, display: display.length > 300 ? `${display.slice(0, 300)}…` : display, qtype, qclass, wire: b.slice(start, at) }, at];
}

function readOpt(b: Uint8Array, at: number): { udpSize: number; version: number; dnssecOk: boolean; end: number } {
  need(b, at, 11, 'the additional record');
  if (b[at] !== 0) throw new Malformed('an additional record that is not EDNS OPT (its name is not the root)');
  const type = u16(b, at + 1);
  if (type !== QTYPE.OPT) throw new Malformed(`an additional record of type ${type} (only EDNS OPT)`);
  const udpSize = u16(b, at + 3);
  const version = b[at + 6];
  const dnssecOk = (b[at + 7] & 0x80) !== 0;
  const rdlen = u16(b, at + 9);
  const start = at + 11;
  need(b, start, rdlen, 'the EDNS options');
  let o = start;
  while (o < start + rdlen) {
    if (o + 4 > start + rdlen) throw new Malformed('an EDNS option header cut short');
    const olen = u16(b, o + 2);
    if (o + 4 + olen > start + rdlen) throw new Malformed('an EDNS option longer than the OPT record');
    o += 4 + olen;
  }
  return { udpSize, version, dnssecOk, end: start + rdlen };
}

// ------------------------------------------------------------------------------------ answers

export type AnswerRecord =
  | { type: 'A'; address: string; ttl: number }
  | { type: 'AAAA'; address: string; ttl: number }
  | { type: 'CNAME'; target: string; ttl: number }
  | { type: 'TXT'; strings: string[]; ttl: number }
  | { type: 'MX'; preference: number; exchange: string; ttl: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl: number }
  | { type: 'CAA'; critical: boolean; tag: string; value: string; ttl: number };

export interface ResponseSpec {
  id: number;
  rd: boolean;
  cd?: boolean;
  opcode?: number;
  rcode: Rcode;
  /** The question to echo (null: QDCOUNT 0, for a query whose question could not be read). */
  question: Question | null;
  /** Whether to add an OPT record (the query had one). */
  edns: boolean;
  answers?: readonly AnswerRecord[];
  /** The largest message the client takes (UDP: answerSize(); TCP: 65535). */
  maxBytes: number;
}

/** The largest UDP answer for a query: 512 octets, or the client's EDNS size up to 1232. */
export function answerSize(q: Pick<Query, 'edns'>): number {
  return q.edns ? Math.min(UDP_EDNS_MAX, q.edns.udpSize) : UDP_PLAIN_MAX;
}

export function clampTtl(ttl: number, min: number, max: number): number {
  const t = Number.isFinite(ttl) ? Math.floor(ttl) : min;
  return Math.max(min, Math.min(max, Math.min(TTL_MAX, t)));
}

const TYPE_CODE: Record<AnswerRecord['type'], number> = { A: QTYPE.A, AAAA: QTYPE.AAAA, CNAME: QTYPE.CNAME, TXT: QTYPE.TXT, MX: QTYPE.MX, SRV: QTYPE.SRV, CAA: QTYPE.CAA };

/**
 * Builds an answer. Records whose data cannot be written (an address that is not one, a target
 * name that is not a name, a TXT string over 255 octets is split) are left out rather than
 * written wrong. Never larger than `maxBytes` (at least 512).
 */
export function buildResponse(spec: ResponseSpec): Uint8Array {
  const max = Math.max(UDP_PLAIN_MAX, Math.min(65535, spec.maxBytes));
  const question = spec.question?.wire ?? new Uint8Array(0);
  const opt = spec.edns ? optRecord(spec.rcode) : new Uint8Array(0);
  const rdatas: Uint8Array[] = [];
  let onlyAddresses = true;
  for (const r of spec.answers ?? []) {
    const data = rdata(r);
    if (!data) continue;
    if (r.type !== 'A' && r.type !== 'AAAA') onlyAddresses = false;
    const rec = new Uint8Array(12 + data.length);
    rec[0] = 0xc0; // owned by the question name, at offset 12
    rec[1] = 12;
    put16(rec, 2, TYPE_CODE[r.type]);
    put16(rec, 4, CLASS_IN);
    put32(rec, 6, clampTtl(r.ttl, 0, TTL_MAX));
    put16(rec, 10, data.length);
    rec.set(data, 12);
    rdatas.push(rec);
  }
  if (!spec.question) rdatas.length = 0; // nothing to point at
  let size = 12 + question.length + opt.length;
  let kept = 0;
  for (const r of rdatas) {
    if (size + r.length > max) break;
    size += r.length;
    kept++;
  }
  const truncated = kept < rdatas.length && !onlyAddresses;
  if (truncated) {
    kept = 0;
    size = 12 + question.length + opt.length;
  }
  const out = new Uint8Array(size);
  put16(out, 0, spec.id);
  let flags = 0x8000 | ((spec.opcode ?? 0) << 11) | 0x0080; // QR, opcode, RA
  if (truncated) flags |= 0x0200;
  if (spec.rd) flags |= 0x0100;
  if (spec.cd) flags |= 0x0010;
  flags |= spec.rcode & 0xf;
  put16(out, 2, flags);
  put16(out, 4, spec.question ? 1 : 0);
  put16(out, 6, kept);
  put16(out, 8, 0);
  put16(out, 10, spec.edns ? 1 : 0);
  let at = 12;
  out.set(question, at);
  at += question.length;
  for (let i = 0; i < kept; i++) {
    out.set(rdatas[i], at);
    at += rdatas[i].length;
  }
  out.set(opt, at);
  return out;
}

/** OPT: root name, our UDP size, the upper 8 bits of an extended rcode, version 0, no options. */
function optRecord(rcode: number): Uint8Array {
  const o = new Uint8Array(11);
  put16(o, 1, QTYPE.OPT);
  put16(o, 3, UDP_EDNS_MAX);
  o[5] = rcode >> 4;
  return o;
}

function rdata(r: AnswerRecord): Uint8Array | null {
  switch (r.type) {
    case 'A':
    case 'AAAA': {
      const a = canonicalAddress(r.address);
      if (!a || a.family !== (r.type === 'A' ? 4 : 6)) return null;
      return Uint8Array.from(a.ip.toByteArray());
    }
    case 'CNAME':
      return encodeName(r.target);
    case 'MX': {
      const name = encodeName(r.exchange);
      if (!name || !isU16(r.preference)) return null;
      return concat([u16bytes(r.preference), name]);
    }
    case 'SRV': {
      const name = encodeName(r.target);
      if (!name || !isU16(r.priority) || !isU16(r.weight) || !isU16(r.port)) return null;
      return concat([u16bytes(r.priority), u16bytes(r.weight), u16bytes(r.port), name]);
    }
    case 'TXT': {
      const parts: Uint8Array[] = [];
      for (const s of r.strings.length ? r.strings : ['']) {
        const bytes = textBytes(s);
        for (let i = 0; i === 0 || i < bytes.length; i += 255) {
          const chunk = bytes.subarray(i, i + 255);
          parts.push(Uint8Array.of(chunk.length), chunk);
        }
      }
      const data = concat(parts);
      return data.length <= 65535 ? data : null;
    }
    case 'CAA': {
      const tag = textBytes(r.tag);
      if (tag.length < 1 || tag.length > 15 || !/^[a-z0-9]+$/i.test(r.tag)) return null;
      const value = textBytes(r.value);
      if (value.length > 65000) return null;
      return concat([Uint8Array.of(r.critical ? 128 : 0, tag.length), tag, value]);
    }
  }
}

/** A host name in wire form, uncompressed; null when it is not one (empty labels, > 63, > 255). */
export function encodeName(name: string): Uint8Array | null {
  const text = name.replace(/\.$/, '');
  const labels = text === '' ? [] : text.split('.');
  const parts: Uint8Array[] = [];
  let size = 1;
  for (const l of labels) {
    const b = textBytes(l);
    if (b.length < 1 || b.length > 63 || /[^\x21-\x7e]/.test(l)) return null;
    parts.push(Uint8Array.of(b.length), b);
    size += 1 + b.length;
  }
  if (size > 255) return null;
  parts.push(Uint8Array.of(0));
  return concat(parts);
}

/** Node hands DNS text back as one char per octet when it can; anything wider is UTF-8. */
function textBytes(s: string): Uint8Array {
  return /^[\x00-\xff]*$/.test(s) ? Buffer.from(s, 'latin1') : Buffer.from(s, 'utf8');
}

function isU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

function u16bytes(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}

function put16(b: Uint8Array, at: number, n: number): void {
  b[at] = (n >> 8) & 0xff;
  b[at + 1] = n & 0xff;
}

function put32(b: Uint8Array, at: number, n: number): void {
  b[at] = (n >>> 24) & 0xff;
  b[at + 1] = (n >>> 16) & 0xff;
  b[at + 2] = (n >>> 8) & 0xff;
  b[at + 3] = n & 0xff;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An answer to a parse error (FORMERR, NOTIMP, BADVERS), or null for a drop. */
export function errorResponse(p: ParsedQuery): Uint8Array | null {
  if (p.kind !== 'error') return null;
  return buildResponse({ id: p.id, rd: p.rd, opcode: p.opcode, rcode: p.rcode, question: p.question, edns: p.edns, maxBytes: UDP_PLAIN_MAX });
}
