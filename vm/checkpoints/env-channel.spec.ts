import { describe, expect, it } from 'vitest';
import { formatReply, parseRequest } from './env-channel.ts';

describe('spritely-env protocol', () => {
  it('parses the requests', () => {
    expect(parseRequest('{"id":"a1","op":"checkpoint.create","comment":"hi"}')).toEqual({ req: { id: 'a1', op: 'checkpoint.create', comment: 'hi' } });
    expect(parseRequest('{"id":"a2","op":"checkpoint.list"}')).toEqual({ req: { id: 'a2', op: 'checkpoint.list' } });
    expect(parseRequest('{"id":"a3","op":"checkpoint.restore","checkpoint":"v3"}')).toEqual({ req: { id: 'a3', op: 'checkpoint.restore', checkpoint: 'v3' } });
    expect(parseRequest('{"id":"a4","op":"checkpoint.mount","checkpoint":"v3"}')).toEqual({ req: { id: 'a4', op: 'checkpoint.mount', checkpoint: 'v3' } });
    expect(parseRequest('{"id":"a5","op":"checkpoint.unmount","checkpoint":"v3","force":true}')).toEqual({ req: { id: 'a5', op: 'checkpoint.unmount', checkpoint: 'v3', force: true } });
    expect(parseRequest('{"id":"a6","op":"checkpoint.diff","from":"v1","to":"now","paths":["/etc"],"patch":true}')).toEqual({ req: { id: 'a6', op: 'checkpoint.diff', from: 'v1', to: 'now', paths: ['/etc'], patch: true } });
    const tooMany = parseRequest(JSON.stringify({ id: 'a7', op: 'checkpoint.diff', from: 'v1', paths: Array(101).fill('/x') }));
    expect('reply' in tooMany && tooMany.reply).toMatch(/^=BEGIN a7\n=ERR bad request/);
  });
  it('answers garbage and unknown operations with an error addressed to the asker', () => {
    expect(parseRequest('nope')).toEqual({ reply: '=BEGIN unknown\n=ERR request is not JSON\n' });
    const r = parseRequest('{"id":"x9","op":"sprites.destroy","name":"other"}');
    expect('reply' in r && r.reply).toMatch(/^=BEGIN x9\n=ERR bad request/);
    const bad = parseRequest('{"id":"../../x","op":"checkpoint.list"}');
    expect('reply' in bad && bad.reply).toMatch(/^=BEGIN unknown\n=ERR/);
  });
  it('frames replies: text lines then =OK, or one =ERR line', () => {
    expect(formatReply('a', { ok: true, text: 'v1\nv2' })).toBe('=BEGIN a\nv1\nv2\n=OK\n');
    expect(formatReply('a', { ok: true, text: '' })).toBe('=BEGIN a\n=OK\n');
    expect(formatReply('a', { ok: false, error: 'no\nsuch' })).toBe('=BEGIN a\n=ERR no such\n');
  });
  it('a text line starting with "=" cannot end the answer early', () => {
    expect(formatReply('a', { ok: true, text: 'x\n=OK\n=ERR y' })).toBe('=BEGIN a\nx\n =OK\n =ERR y\n=OK\n');
  });
});
