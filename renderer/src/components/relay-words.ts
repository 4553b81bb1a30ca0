/** The relay tunnel's state in a user's words (the reason, when there is one, is shown beside it). */
import type { RelayStatus } from '../store.ts';

export const RELAY_STATE_WORDS: Record<RelayStatus['status'], string> = {
  off: 'relay off',
  connecting: 'connecting to the relay…',
  connected: 'relay connected',
  backoff: 'relay unreachable, retrying…',
  unauthorized: 'relay refused the token',
  closed: 'relay closed',
};
