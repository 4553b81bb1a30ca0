import { describe, expect, it } from 'vitest';
import { answerSize, buildResponse, clampTtl, encodeName, errorResponse, MAX_QUERY_BYTES, parseQuery, QTYPE, RCODE, type ParsedQuery, type Query } from './dns-message.ts';
import { makeQuery, readAnswer } from './dns-test-server.ts';

const bytes = (...parts: Array<number | number[] | string>) => Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : p)));
/** A header: id 0xabcd, flags, counts. */
const header = (flags: number, qd = 1, an = 0, ns = 0, ar = 0) => [0xab, 0xcd, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, ns, 0, ar];
const question = (labels: string[], qtype = 1, qclass = 1) => [...labels.flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]), 0, qtype >> 8, qtype & 0xff, qclass >> 8, qclass & 0xff];
const opt = (size = 1232, version = 0, flags = 0, options: number[] = []) => [0, 0, 41, size >> 8, size & 0xff, 0, version, flags >> 8, flags & 0xff, options.length >> 8, options.length & 0xff, ...options];

function query(p: ParsedQuery): Query {
  if (p.kind !== 'query') throw new Error(`expected a query, got ${p.kind}: ${'reason' in p ? p.reason : ''}`);
  return p.query;
}

function error(p: ParsedQuery): Extract<ParsedQuery, { kind: 'error' }> {
  if (p.kind !== 'error') throw new Error(`expected an error, got ${p.kind}`);
  return p;
}

describe('parseQuery: what a stub resolver sends', () => {
  it('reads one question, lower-cases the name, keeps the wire form (case included) to echo', () => {
    const q = query(parseQuery(makeQuery('ExAmPle.COM', QTYPE.AAAA, { id: 0x0102 })));
    expect(q).toMatchObject({ id: 0x0102, rd: true, cd: false, edns: null, question: { name: 'example.com', display: 'example.com', qtype: QTYPE.AAAA, qclass: 1 } });
    expect(Buffer.from(q.question.wire).toString('latin1')).toContain('ExAmPle');
    const answer = readAnswer(buildResponse({ id: q.id, rd: q.rd, rcode: RCODE.NOERROR, question: q.question, edns: false, maxBytes: 512 }));
    expect(Buffer.from(answer.question!).toString('latin1')).toContain('ExAmPle\x03COM');
  });

  it('reads EDNS(0): the client size (at least 512), DO, any options that fill the record exactly', () => {
    const cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    const padding = [0, 12, 0, 3, 0, 0, 0];
    const q = query(parseQuery(bytes(header(0x0100, 1, 0, 0, 1), question(['a', 'example']), opt(4096, 0, 0x8000, [...cookie, ...padding]))));
    expect(q.edns).toEqual({ udpSize: 4096, dnssecOk: true });
    expect(query(parseQuery(bytes(header(0x0100, 1, 0, 0, 1), question(['a']), opt(100)))).edns!.udpSize).toBe(512);
    expect(answerSize(q)).toBe(1232);
    expect(answerSize({ edns: { udpSize: 800, dnssecOk: false } })).toBe(800);
    expect(answerSize({ edns: null })).toBe(512);
  });

  it('reads the root name as "" and odd octets as \\DDD, with no host name', () => {
    expect(query(parseQuery(bytes(header(0x0100), question([]))))).toMatchObject({ question: { name: '', display: '.' } });
    const odd = query(parseQuery(bytes(header(0x0100), question(['a b', 'x.y', '\x00']))));
    expect(odd.question).toMatchObject({ name: null, display: 'a\\032b.x\\046y.\\000' });
    expect(query(parseQuery(bytes(header(0x0100), question(['_srv', 'a-b'])))).question.name).toBe('_srv.a-b');
  });

  it('accepts names up to 255 octets and labels up to 63', () => {
    const l63 = 'a'.repeat(63);
    // 4 × (1 + 61) + (1 + 5) + 1 = 255
    const n255 = ['a'.repeat(61), 'b'.repeat(61), 'c'.repeat(61), 'd'.repeat(61), 'eeeee'];
    expect(query(parseQuery(bytes(header(0x0100), question([l63, 'example'])))).question.name).toBe(`${l63}.example`);
    expect(query(parseQuery(bytes(header(0x0100), question(n255)))).question.name).toHaveLength(253);
    expect(error(parseQuery(bytes(header(0x0100), question([...n255.slice(0, 4), 'eeeeee']))))).toMatchObject({ rcode: RCODE.FORMERR, reason: expect.stringMatching(/longer than 255/) });
  });
});

describe('parseQuery: hostile input', () => {
  it('drops what has no ID to answer to, and responses', () => {
    for (let n = 0; n < 12; n++) expect(parseQuery(new Uint8Array(n)).kind).toBe('drop');
    expect(parseQuery(bytes(header(0x8100), question(['a', 'b'])))).toMatchObject({ kind: 'drop', reason: expect.stringMatching(/response/) });
  });

  it('answers NOTIMP to other opcodes, without reading further', () => {
    for (const op of [1, 2, 4, 5, 15]) {
      const e = error(parseQuery(bytes(header(0x0100 | (op << 11)), 0xff)));
      expect(e).toMatchObject({ rcode: RCODE.NOTIMP, opcode: op, question: null });
      expect(readAnswer(errorResponse(e)!)).toMatchObject({ id: 0xabcd, rcode: RCODE.NOTIMP, questions: 0, flags: { qr: true, opcode: op } });
    }
  });

  it('answers FORMERR to every malformed query, with a reason', () => {
    const l = question(['a', 'example']);
    const table: Array<[string, Uint8Array, RegExp]> = [
      ['no question', bytes(header(0x0100, 0)), /0 questions/],
      ['two questions', bytes(header(0x0100, 2), l, l), /2 questions/],
      ['an answer in a query', bytes(header(0x0100, 1, 1), l), /answer or authority/],
      ['an authority record', bytes(header(0x0100, 1, 0, 1), l), /answer or authority/],
      ['two additional records', bytes(header(0x0100, 1, 0, 0, 2), l, opt(), opt()), /2 additional/],
      ['TC set', bytes(header(0x0300), l), /truncated/],
      ['compression pointer', bytes(header(0x0100), 0xc0, 0x0c, 0, 1, 0, 1), /compression pointer/],
      ['pointer after a label', bytes(header(0x0100), 1, 0x61, 0xc0, 0x0c, 0, 1, 0, 1), /compression pointer/],
      ['label type 01', bytes(header(0x0100), 0x41, 0, 1, 0, 1), /label type 0x40/],
      ['label type 10', bytes(header(0x0100), 0x81, 0, 1, 0, 1), /label type 0x80/],
      ['cut inside a label', bytes(header(0x0100), 5, 0x61, 0x62), /ends inside a label/],
      ['cut before the name ends', bytes(header(0x0100), 1, 0x61), /ends inside the question name/],
      ['no type and class', bytes(header(0x0100), 1, 0x61, 0, 0, 1), /type and class/],
      ['trailing octets', bytes(header(0x0100), l, 0), /1 octets after/],
      ['an additional record that is not OPT', bytes(header(0x0100, 1, 0, 0, 1), l, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4), /type 1 \(only EDNS OPT\)/],
      ['OPT with a name', bytes(header(0x0100, 1, 0, 0, 1), l, 1, 0x61, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0), /not the root/],
      ['OPT cut short', bytes(header(0x0100, 1, 0, 0, 1), l, 0, 0, 41, 2), /ends inside the additional record/],
      ['OPT RDATA past the end', bytes(header(0x0100, 1, 0, 0, 1), l, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 10, 0, 10, 0, 2, 1, 2), /ends inside the EDNS options/],
      ['an option longer than the OPT', bytes(header(0x0100, 1, 0, 0, 1), l, opt(1232, 0, 0, [0, 10, 0, 9, 1, 2])), /longer than the OPT/],
      ['an option header cut short', bytes(header(0x0100, 1, 0, 0, 1), l, opt(1232, 0, 0, [0, 10])), /option header cut short/],
      ['oversized', bytes(header(0x0100), l, new Array(MAX_QUERY_BYTES).fill(0)), /octets \(at most/],
    ];
    for (const [what, packet, why] of table) {
      expect(parseQuery(packet).kind, what).toBe('error');
      const e = error(parseQuery(packet));
      expect(e.rcode, what).toBe(RCODE.FORMERR);
      expect(e.reason, what).toMatch(why);
      const answer = readAnswer(errorResponse(e)!);
      expect(answer, what).toMatchObject({ id: 0xabcd, rcode: RCODE.FORMERR, flags: { qr: true, rd: true } });
    }
  });

  it('answers BADVERS (extended rcode 16, in an OPT) to an EDNS version it does not speak', () => {
    const e = error(parseQuery(bytes(header(0x0100, 1, 0, 0, 1), question(['a', 'example']), opt(1232, 1))));
    expect(e.rcode).toBe(RCODE.BADVERS);
    const a = readAnswer(errorResponse(e)!);
    expect(a.rcode).toBe(16);
    expect(a.ednsSize).toBe(1232);
    expect(a.questions).toBe(1);
  });

  it('never throws, whatever the octets: a fuzz loop of mutations and random packets', () => {
    const seeds = [
      makeQuery('www.example.com', QTYPE.A),
      makeQuery('a.b.c.d.e.f', QTYPE.AAAA, { edns: 1232 }),
      bytes(header(0x0100, 1, 0, 0, 1), question(['x', 'y']), opt(4096, 0, 0x8000, [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])),
    ];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const kinds = { query: 0, error: 0, drop: 0 };
    const bad: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let p: Uint8Array;
      const base = seeds[rand(seeds.length)];
      switch (rand(5)) {
        case 0: // flip a few octets
          p = base.slice();
          for (let k = rand(4) + 1; k > 0; k--) p[rand(p.length)] = rand(256);
          break;
        case 1: // truncate
          p = base.slice(0, rand(base.length + 1));
          break;
        case 2: // extend
          p = Uint8Array.from([...base, ...Array.from({ length: rand(40) }, () => rand(256))]);
          break;
        case 3: // counts and flags
          p = base.slice();
          p[2] = rand(256);
          p[5] = rand(3);
          p[11] = rand(3);
          break;
        default: // noise
          p = Uint8Array.from({ length: rand(1200) }, () => rand(256));
      }
      // plain checks in the loop (an expect per packet would cost more than the parsing)
      const parsed = parseQuery(p); // throws → the test fails
      kinds[parsed.kind]++;
      if (parsed.kind === 'error') {
        const out = errorResponse(parsed)!;
        if (out.length > 512 || ((out[0] << 8) | out[1]) !== ((p[0] << 8) | p[1])) bad.push(Buffer.from(p).toString('hex'));
      }
      if (parsed.kind === 'query') {
        const q = parsed.query;
        const out = buildResponse({ id: q.id, rd: q.rd, rcode: RCODE.NOERROR, question: q.question, edns: q.edns !== null, answers: [{ type: 'A', address: '192.0.2.1', ttl: 5 }], maxBytes: answerSize(q) });
        if (readAnswer(out).answers[0]?.data !== '192.0.2.1' || out.length > answerSize(q)) bad.push(Buffer.from(p).toString('hex'));
      }
    }
    expect(bad).toEqual([]);
    // the loop reached every outcome, not only one
    expect(kinds.query).toBeGreaterThan(100);
    expect(kinds.error).toBeGreaterThan(1000);
    expect(kinds.drop).toBeGreaterThan(100);
  });

  it('does work linear in the packet: the largest packets parse as fast as small ones', () => {
    // many one-octet labels (stopped at 255 octets), and a long run of EDNS options
    const labels = bytes(header(0x0100), ...Array.from({ length: 500 }, () => [1, 0x61]));
    const options = bytes(header(0x0100, 1, 0, 0, 1), question(['a']), opt(1232, 0, 0, Array.from({ length: 240 }, () => [0, 1, 0, 0]).flat()));
    expect(error(parseQuery(labels)).reason).toMatch(/longer than 255/);
    expect(query(parseQuery(options)).edns).not.toBeNull();
    const t = performance.now();
    for (let i = 0; i < 5000; i++) {
      parseQuery(labels);
      parseQuery(options);
    }
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

describe('buildResponse', () => {
  const q = query(parseQuery(makeQuery('host.example', QTYPE.A, { id: 7 })));

  it('answers with QR and RA set, the ID, RD and CD echoed, every record owned by the question name', () => {
    const cdQuery = makeQuery('host.example', QTYPE.A, { id: 7 });
    cdQuery[3] |= 0x10;
    const cq = query(parseQuery(cdQuery));
    expect(cq.cd).toBe(true);
    const out = buildResponse({ id: cq.id, rd: cq.rd, cd: cq.cd, rcode: RCODE.NOERROR, question: cq.question, edns: false, answers: [{ type: 'A', address: '192.0.2.7', ttl: 30 }, { type: 'AAAA', address: '2001:DB8::7', ttl: 30 }], maxBytes: 512 });
    const a = readAnswer(out);
    expect(a).toMatchObject({ id: 7, rcode: 0, questions: 1, flags: { qr: true, ra: true, rd: true, cd: true, aa: false, tc: false }, ednsSize: null });
    expect(a.answers).toEqual([
      { type: QTYPE.A, ttl: 30, data: '192.0.2.7' },
      { type: QTYPE.AAAA, ttl: 30, data: '2001:db8:0:0:0:0:0:7' },
    ]);
    // the owner is a pointer to offset 12
    expect(out[12 + q.question.wire.length]).toBe(0xc0);
    expect(out[13 + q.question.wire.length]).toBe(12);
  });

  it('answers each rcode, with an OPT when the query had one', () => {
    for (const rcode of [RCODE.NOERROR, RCODE.SERVFAIL, RCODE.NXDOMAIN, RCODE.REFUSED, RCODE.FORMERR]) {
      const a = readAnswer(buildResponse({ id: 1, rd: false, rcode, question: q.question, edns: true, maxBytes: 1232 }));
      expect(a).toMatchObject({ rcode, ednsSize: 1232, answers: [] });
    }
  });

  it('writes each data type', () => {
    const answers = readAnswer(
      buildResponse({
        id: 1,
        rd: true,
        rcode: 0,
        question: q.question,
        edns: false,
        maxBytes: 4096,
        answers: [
          { type: 'CNAME', target: 'other.example.', ttl: 60 },
          { type: 'TXT', strings: ['v=spf1 -all', ''], ttl: 60 },
          { type: 'MX', preference: 10, exchange: 'mx.example', ttl: 60 },
          { type: 'MX', preference: 0, exchange: '.', ttl: 60 },
          { type: 'SRV', priority: 1, weight: 2, port: 5222, target: 'xmpp.example', ttl: 60 },
          { type: 'CAA', critical: true, tag: 'issue', value: 'ca.example', ttl: 60 },
        ],
      }),
    ).answers;
    expect(answers.map((a) => a.data)).toEqual(['other.example', 'v=spf1 -all|', '10 mx.example', '0 ', '1 2 5222 xmpp.example', '128 issue ca.example']);
  });

  it('splits a TXT string over 255 octets into strings of at most 255', () => {
    const long = 'x'.repeat(600);
    const a = readAnswer(buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, maxBytes: 4096, answers: [{ type: 'TXT', strings: [long], ttl: 1 }] }));
    expect(a.answers[0].data).toBe(`${'x'.repeat(255)}|${'x'.repeat(255)}|${'x'.repeat(90)}`);
  });

  it('leaves out records it cannot write correctly', () => {
    const a = readAnswer(
      buildResponse({
        id: 1,
        rd: true,
        rcode: 0,
        question: q.question,
        edns: false,
        maxBytes: 512,
        answers: [
          { type: 'A', address: '2001:db8::1', ttl: 1 },
          { type: 'AAAA', address: '192.0.2.1', ttl: 1 },
          { type: 'A', address: '0x7f.1', ttl: 1 },
          { type: 'A', address: '::ffff:192.0.2.9', ttl: 1 }, // the same address as 192.0.2.9
          { type: 'CNAME', target: 'a..b', ttl: 1 },
          { type: 'MX', preference: 70000, exchange: 'mx.example', ttl: 1 },
          { type: 'SRV', priority: 1, weight: 1, port: -1, target: 'x.example', ttl: 1 },
          { type: 'CAA', critical: false, tag: 'bad tag', value: 'x', ttl: 1 },
        ],
      }),
    );
    expect(a.answers.map((x) => x.data)).toEqual(['192.0.2.9']);
  });

  it('clamps TTLs to 0 … 2^31-1', () => {
    const a = readAnswer(
      buildResponse({
        id: 1,
        rd: true,
        rcode: 0,
        question: q.question,
        edns: false,
        maxBytes: 512,
        answers: [
          { type: 'A', address: '192.0.2.1', ttl: -5 },
          { type: 'A', address: '192.0.2.2', ttl: 2 ** 40 },
          { type: 'A', address: '192.0.2.3', ttl: NaN },
        ],
      }),
    );
    expect(a.answers.map((x) => x.ttl)).toEqual([0, 0x7fffffff, 0]);
    expect(clampTtl(5000, 1, 300)).toBe(300);
    expect(clampTtl(0, 1, 300)).toBe(1);
    expect(clampTtl(12.9, 1, 300)).toBe(12);
  });

  it('fits the client: addresses that do not fit are left out (no TC); other data that does not fit is TC with no records', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ type: 'A' as const, address: `192.0.2.${i}`, ttl: 5 }));
    const plain = buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: many, maxBytes: answerSize({ edns: null }) });
    expect(plain.length).toBeLessThanOrEqual(512);
    const pa = readAnswer(plain);
    expect(pa.flags.tc).toBe(false);
    expect(pa.answers.length).toBe(Math.floor((512 - 12 - q.question.wire.length) / 16));
    expect(pa.answers[0].data).toBe('192.0.2.0');
    const edns = buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: true, answers: many, maxBytes: answerSize({ edns: { udpSize: 4096, dnssecOk: false } }) });
    expect(edns.length).toBeLessThanOrEqual(1232);
    expect(readAnswer(edns).answers.length).toBe(Math.floor((1232 - 12 - q.question.wire.length - 11) / 16));
    const tcp = buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: many, maxBytes: 65535 });
    expect(readAnswer(tcp).answers).toHaveLength(100);

    const txt = Array.from({ length: 10 }, () => ({ type: 'TXT' as const, strings: ['y'.repeat(200)], ttl: 5 }));
    const cut = readAnswer(buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: txt, maxBytes: 512 }));
    expect(cut).toMatchObject({ flags: { tc: true }, answers: [] });
    expect(readAnswer(buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: txt, maxBytes: 65535 })).answers).toHaveLength(10);
  });

  it('never goes under 512 octets or over 65535, whatever it is told', () => {
    const many = Array.from({ length: 5000 }, () => ({ type: 'A' as const, address: '192.0.2.1', ttl: 5 }));
    expect(buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: many, maxBytes: 10 }).length).toBeGreaterThan(400);
    expect(buildResponse({ id: 1, rd: true, rcode: 0, question: q.question, edns: false, answers: many, maxBytes: 1e9 }).length).toBeLessThanOrEqual(65535);
  });
});

describe('encodeName', () => {
  it('writes names in wire form and refuses what is not one', () => {
    expect(Array.from(encodeName('a.bc')!)).toEqual([1, 0x61, 2, 0x62, 0x63, 0]);
    expect(Array.from(encodeName('a.bc.')!)).toEqual([1, 0x61, 2, 0x62, 0x63, 0]);
    expect(Array.from(encodeName('')!)).toEqual([0]);
    expect(encodeName('a..b')).toBeNull();
    expect(encodeName(`${'a'.repeat(64)}.b`)).toBeNull();
    expect(encodeName(Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.'))).toBeNull();
    expect(encodeName('sp ace.example')).toBeNull();
  });
});
