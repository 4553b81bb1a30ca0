/**
 * The installation's identity for the browser UI: one ECDSA P-256 key pair, its private half in a
 * 0600 file in the 0700 data dir. A page pins the public half when it logs in, and before it
 * (re)connects it has the daemon sign a fresh nonce — something else squatting on the daemon's
 * loopback port after a restart cannot, so the page sends it nothing (docs/ui.md).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fromB64url, toB64url } from './ui-protocol.ts';

export interface Identity {
  /** SPKI, base64url. */
  readonly publicKey: string;
  sign(message: string): string;
}

export function loadOrCreateIdentity(file: string, log: (msg: string) => void = () => {}): Identity {
  let key: crypto.KeyObject | null = null;
  try {
    key = crypto.createPrivateKey(fs.readFileSync(file));
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') key = null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`ui identity: ${file} is unreadable (${(err as Error).message}); making a new key (open windows will have to log in again)`);
  }
  if (!key) {
    key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'w' });
    fs.renameSync(tmp, file);
  }
  fs.chmodSync(file, 0o600);
  const priv = key;
  const publicKey = toB64url(new Uint8Array(crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' })));
  return {
    publicKey,
    sign: (message) => toB64url(new Uint8Array(crypto.sign('sha256', Buffer.from(message), { key: priv, dsaEncoding: 'ieee-p1363' }))),
  };
}

/** A P-256 public key from base64url SPKI, or null when it is anything else. */
export function parseP256Key(spki: string): crypto.KeyObject | null {
  try {
    if (spki.length > 400) return null;
    const key = crypto.createPublicKey({ key: Buffer.from(fromB64url(spki)), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : null;
  } catch {
    return null;
  }
}

/** Checks a P1363 ECDSA-SHA256 signature; false for anything malformed. */
export function verifyP256(key: crypto.KeyObject, message: string, signature: string): boolean {
  try {
    const sig = fromB64url(signature);
    if (sig.length !== 64) return false;
    return crypto.verify('sha256', Buffer.from(message), { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
