/** The logging hook every relay module takes (the CLI prints JSON lines; tests and the daemon pass their own). */
export type Log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const silentLog: Log = () => undefined;

/** One JSON object per line on stderr. */
export const jsonLinesLog: Log = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};
