// Volunteer identities: a token the coordinator signs and hands out at hello, which the volunteer keeps (the page in
// localStorage, the Node worker in memory and a file) and presents at every later hello, so its record in a run
// (strikes, passed checks, a ban) follows it across reconnects and coordinator restarts instead of lasting one
// connection.
//
//   token = `${id}.${sig}`   id = 'w-' + 16 hex digits (random), sig = base64url(HMAC-SHA256(secret, id))
//
// The secret is <data-dir>/identity-secret (mode 0600), made at the first start, so a restarted coordinator accepts
// the tokens it gave out before. A token that does not verify (forged, from another coordinator, cut short) earns a
// fresh identity, not a refusal. Identities are free to mint (drop the token, get a new one): they tie a volunteer's
// own connections together and make a ban stick to whoever keeps its token; a fresh identity starts on probation
// (./run.ts), which is what makes shedding one cost something.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SECRET_FILE = 'identity-secret';

export interface Identity {
  /** the worker id the runs know this volunteer by */
  id: string;
  /** what the volunteer keeps and presents again */
  token: string;
}

const ID = /^w-[0-9a-f]{16}$/;

export class Identities {
  constructor(private readonly secret: Buffer) {}

  /** the data dir's secret, made (32 random bytes) at the first start */
  static load(dataDir: string): Identities {
    const path = join(dataDir, SECRET_FILE);
    if (existsSync(path)) {
      const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
      if (secret.length >= 32) return new Identities(secret);
    }
    mkdirSync(dataDir, { recursive: true });
    const secret = randomBytes(32);
    writeFileSync(path, `${secret.toString('base64url')}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    return new Identities(secret);
  }

  private sign(id: string): string {
    return createHmac('sha256', this.secret).update(id, 'utf8').digest('base64url');
  }

  /** a new identity */
  issue(): Identity {
    const id = `w-${randomBytes(8).toString('hex')}`;
    return { id, token: `${id}.${this.sign(id)}` };
  }

  /** the id a token was issued for, or undefined when it is not one of ours (constant-time signature check) */
  verify(token: unknown): string | undefined {
    if (typeof token !== 'string' || token.length > 200) return undefined;
    const dot = token.indexOf('.');
    const id = token.slice(0, dot);
    if (dot < 0 || !ID.test(id)) return undefined;
    const given = Buffer.from(token.slice(dot + 1), 'utf8');
    const want = Buffer.from(this.sign(id), 'utf8');
    return given.length === want.length && timingSafeEqual(given, want) ? id : undefined;
  }
}
