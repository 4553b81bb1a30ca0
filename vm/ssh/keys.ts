/**
 * SSH keys made on the host: the installation's client key (0600 in the data dir, injected into
 * each sprite's authorized_keys at create, never baked into an image) and one ed25519 host key per
 * sprite (generating keys inside a TCG guest takes seconds; here it takes a millisecond).
 */
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function generateEd25519(comment: string): KeyPair {
  const kp = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  return { privateKey: kp.private, publicKey: kp.public.trim() };
}

export function ensureClientKey(keysDir: string): KeyPair {
  const priv = path.join(keysDir, 'id_ed25519');
  const pub = `${priv}.pub`;
  if (fs.existsSync(priv) && fs.existsSync(pub)) {
    fs.chmodSync(priv, 0o600);
    return { privateKey: fs.readFileSync(priv, 'utf8'), publicKey: fs.readFileSync(pub, 'utf8').trim() };
  }
  const kp = generateEd25519('spritely');
  fs.writeFileSync(priv, kp.privateKey, { mode: 0o600 });
  fs.writeFileSync(pub, kp.publicKey + '\n', { mode: 0o644 });
  return kp;
}
