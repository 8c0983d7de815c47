// The admin token: GRADSWARM_TOKEN, or one generated at the first start, printed once and kept in
// <data-dir>/admin-token (mode 0600). It guards the admin API, the console and the /admin socket namespace.
// Comparison is constant-time over SHA-256 digests, so neither the content nor the length leaks through timing.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TOKEN_FILE = 'admin-token';

export interface AdminToken {
  token: string;
  /** where it came from: the environment, the data dir's file, or made just now (to be printed once) */
  source: 'env' | 'file' | 'generated';
  path?: string;
}

export function loadOrCreateToken(dataDir: string, env: string | undefined = process.env.GRADSWARM_TOKEN): AdminToken {
  if (env !== undefined && env !== '') {
    if (env.length < 16) throw new Error('GRADSWARM_TOKEN is shorter than 16 characters: use a long random string (or unset it and one is generated)');
    return { token: env, source: 'env' };
  }
  const path = join(dataDir, TOKEN_FILE);
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, source: 'file', path };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return { token, source: 'generated', path };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** constant-time: true when `given` is the token */
export function tokenMatches(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  return timingSafeEqual(digest(given), digest(token));
}

/** the token of an `Authorization: Bearer <token>` header */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
