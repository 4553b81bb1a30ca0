/**
 * Splits a byte stream into JSON messages, one per line, as QMP and the guest agent send them.
 * Pure: feed it chunks, it returns whole messages; a line that is not JSON is reported, not thrown.
 */
export class JsonLineDecoder {
  private buffer = '';

  feed(chunk: string): { messages: unknown[]; garbage: string[] } {
    this.buffer += chunk;
    const messages: unknown[] = [];
    const garbage: string[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      try {
        messages.push(JSON.parse(line));
      } catch {
        garbage.push(line);
      }
    }
    return { messages, garbage };
  }

  reset(): void {
    this.buffer = '';
  }
}
