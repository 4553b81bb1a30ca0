/**
 * A sprite's network policy as the daemon spells it (`internet`, `none`, `allow=HOST,…`), read
 * into what the network editor shows and written back. Reading is lenient and checks nothing:
 * the daemon is the judge of every entry and its refusal is shown in its own words.
 */

export type NetworkMode = 'internet' | 'none' | 'allow';

export interface PolicyDraft {
  mode: NetworkMode;
  allow: string[];
}

export function readPolicy(text: string): PolicyDraft {
  const t = text.trim();
  if (t === 'none') return { mode: 'none', allow: [] };
  if (t.startsWith('allow=')) return { mode: 'allow', allow: splitEntries(t.slice('allow='.length)) };
  return { mode: 'internet', allow: [] };
}

export function policyText(d: PolicyDraft): string {
  return d.mode === 'allow' ? `allow=${d.allow.join(',')}` : d.mode;
}

/** Entries as typed or pasted: separated by commas, spaces or new lines; repeats dropped. */
export function splitEntries(text: string): string[] {
  const out: string[] = [];
  for (const e of text.split(/[\s,]+/)) if (e && !out.includes(e)) out.push(e);
  return out;
}

/** Adds typed entries to a list (keeping its order, without repeats). */
export function addEntries(list: string[], typed: string): string[] {
  return [...list, ...splitEntries(typed).filter((e) => !list.includes(e))];
}
