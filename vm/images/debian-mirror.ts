/**
 * Which Debian mirror an image build uses: `SPRITELY_DEBIAN_MIRROR` when set, else the Debian
 * archive entries of this host's own apt configuration — one-line `sources.list` files and deb822
 * `.sources` files — so the build (and the guest's own apt) goes where the host's apt goes. Entries
 * count when they serve the recipe's suite or its `-updates` / `-security` suites. When none do (a
 * non-Debian host), mmdebstrap chooses for itself. No mirror is named in this code.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface AptSource {
  types: string[];
  uri: string;
  suites: string[];
  components: string[];
}

function stripComment(line: string): string {
  const at = line.indexOf('#');
  return (at < 0 ? line : line.slice(0, at)).trim();
}

/** `deb [options] URI SUITE COMPONENT…` lines (sources.list). */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = stripComment(raw).replace(/\[[^\]]*\]/, ' ');
    const [type, uri, suite, ...components] = line.split(/\s+/).filter(Boolean);
    if (!type || !uri || !suite || (type !== 'deb' && type !== 'deb-src')) continue;
    out.push({ types: [type], uri, suites: [suite], components });
  }
  return out;
}

/** deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled:`), as in `*.sources`. */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | null = null;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2].trim());
    }
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    for (const uri of words('uris')) out.push({ types: words('types'), uri, suites: words('suites'), components: words('components') });
  }
  return out;
}

/** Whether `suite` is `base` itself or one of its update/security suites. */
function servesSuite(suite: string, base: string): boolean {
  return suite === base || suite.startsWith(`${base}-`) || suite.startsWith(`${base}/`);
}

/**
 * mmdebstrap mirror arguments (one-line `deb URI SUITE main` entries) for `suite` from the host's
 * sources, in their order, without repeats.
 */
export function mirrorEntries(sources: AptSource[], suite: string): string[] {
  const out: string[] = [];
  for (const s of sources) {
    if (!s.types.includes('deb') || !s.components.includes('main')) continue;
    for (const sv of s.suites.filter((x) => servesSuite(x, suite))) {
      const entry = `deb ${s.uri} ${sv} main`;
      if (!out.includes(entry)) out.push(entry);
    }
  }
  return out;
}

/** Every apt source configured on this host (under `aptDir`, normally /etc/apt). */
export function hostAptSources(aptDir = '/etc/apt'): AptSource[] {
  const read = (file: string) => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const sources = parseOneLineSources(read(path.join(aptDir, 'sources.list')));
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(aptDir, 'sources.list.d')).sort();
  } catch {
    /* no directory */
  }
  for (const n of names) {
    const file = path.join(aptDir, 'sources.list.d', n);
    if (n.endsWith('.list')) sources.push(...parseOneLineSources(read(file)));
    else if (n.endsWith('.sources')) sources.push(...parseDeb822Sources(read(file)));
  }
  return sources;
}

/** The mirror arguments for a build of `suite`: the setting, else the host's Debian entries, else none. */
export function debianMirrorArgs(suite: string, env: NodeJS.ProcessEnv = process.env, aptDir = '/etc/apt'): string[] {
  const configured = env.SPRITELY_DEBIAN_MIRROR?.trim();
  if (configured) return [configured];
  return mirrorEntries(hostAptSources(aptDir), suite);
}
