/**
 * One word for a POSIX shell, quoted only when it must be: what the CLI puts on a remote command
 * line (`ssh-config`'s ProxyCommand, `exec --checkpoint`'s comment). The daemon itself never builds
 * a command line for a guest: the guest agent takes argv as a list.
 */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_\-+=/.,:@%]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
