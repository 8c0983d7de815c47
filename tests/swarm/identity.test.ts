// Volunteer identities (coordinator/swarm/identity.ts): a token signed at hello and presented again, so a run's
// record of a volunteer (strikes, a ban, probation) follows it across reconnects and a coordinator restart, while a
// forged, foreign or doubly used token only earns a new identity; a new identity from a network that produced a
// banned one starts on the longer probation.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Identities } from '../../coordinator/swarm/identity.ts';
import { Coordinator, networkOf } from '../../coordinator/swarm/server.ts';
import { PROTOCOL_VERSION, type Lease } from '../../shared/protocol.ts';
import { ask, connect, tinyRun, type SimSocket } from './helpers.ts';

const sockets: SimSocket[] = [];
const coords: Coordinator[] = [];
afterAll(async () => {
  for (const s of sockets) s.close();
  for (const c of coords) await c.close();
});

async function start(dataDir: string): Promise<Coordinator> {
  const c = new Coordinator({ port: 0, host: '127.0.0.1', dataDir });
  coords.push(c);
  await c.restore();
  await c.listen();
  return c;
}

/** a connection that says hello (with `identity` if given): its socket and the welcome */
async function hello(url: string, identity?: string) {
  const s = await connect(url);
  sockets.push(s);
  const w = await ask<{ ok: boolean; workerId: string; identity: string }>(s, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim', ...(identity ? { identity } : {}) });
  expect(w.ok).toBe(true);
  return { s, ...w };
}

describe('identity tokens', () => {
  it('verify what was issued with the same secret, nothing else', () => {
    const ids = new Identities(Buffer.alloc(32, 7));
    const a = ids.issue();
    expect(a.id).toMatch(/^w-[0-9a-f]{16}$/);
    expect(ids.verify(a.token)).toBe(a.id);
    expect(new Identities(Buffer.alloc(32, 7)).verify(a.token)).toBe(a.id); // a restart with the same secret
    expect(new Identities(Buffer.alloc(32, 8)).verify(a.token)).toBeUndefined(); // another coordinator
    const other = ids.issue();
    expect(ids.verify(`${other.id}.${a.token.split('.')[1]}`)).toBeUndefined(); // a signature moved to another id
    for (const bad of [undefined, 42, '', 'w-0000000000000000', `${a.token}x`, `${a.id}.`, 'x'.repeat(500)]) expect(ids.verify(bad)).toBeUndefined();
  });

  it('networkOf: an IPv4 address as it is (mapped or not), an IPv6 address by its /64', () => {
    expect(networkOf('203.0.113.9')).toBe('203.0.113.9');
    expect(networkOf('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(networkOf('2001:db8:0:12:abcd::1')).toBe('2001:db8:0:12::/64');
    expect(networkOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(networkOf('::1')).toBe('0:0:0:0::/64');
  });
});

describe('identities across reconnects and restarts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gradswarm-identity-'));

  it('a reconnect with the token is the same volunteer; a forged token or one in use elsewhere gets a new identity', async () => {
    const c = await start(dataDir);
    const first = await hello(c.url);
    expect(first.identity.startsWith(`${first.workerId}.`)).toBe(true);
    const twin = await hello(c.url, first.identity); // the same token while the first connection is up
    expect(twin.workerId).not.toBe(first.workerId);
    const forged = await hello(c.url, `${first.workerId}.${'A'.repeat(43)}`);
    expect(forged.workerId).not.toBe(first.workerId);
    first.s.close();
    await new Promise((ok) => setTimeout(ok, 100));
    const back = await hello(c.url, first.identity);
    expect(back.workerId).toBe(first.workerId);
    expect(back.identity).toBe(first.identity);
    // a second hello on the same connection keeps its identity whatever it presents
    const again = await ask<{ workerId: string }>(back.s, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim', identity: twin.identity });
    expect(again.workerId).toBe(first.workerId);
  });

  it('a ban follows the identity across a reconnect and a coordinator restart; its network\'s next identity gets the longer probation', async () => {
    const c = coords[0];
    const run = await c.addRun(tinyRun({ train: { max_steps: 50 }, swarm: { target_batch_size: 8, ban_after: 1, spot_check_fraction: 0.5, probation: 2, probation_after_ban: 7 } }), { id: 'idrun' });
    const x = await hello(c.url);
    expect((await ask<{ ok: boolean }>(x.s, 'join', { runId: 'idrun' })).ok).toBe(true);
    const { lease } = await ask<{ lease: Lease }>(x.s, 'lease', { runId: 'idrun', version: 0 });
    const grads = new Float32Array(run.layout.size);
    grads[5] = NaN;
    const r = await ask<{ code: string }>(x.s, 'submit', { runId: 'idrun', leaseId: lease.leaseId, version: 0, loss: 1, grads });
    expect(r.code).toBe('non-finite');
    expect(run.workers.get(x.workerId)!.banned).toMatch(/non-finite/);
    x.s.close();
    await new Promise((ok) => setTimeout(ok, 100));

    const banned = async (coord: Coordinator) => {
      const y = await hello(coord.url, x.identity);
      expect(y.workerId).toBe(x.workerId);
      await ask(y.s, 'join', { runId: 'idrun' });
      const l = await ask<{ ok: boolean; code?: string }>(y.s, 'lease', { runId: 'idrun', version: 0 });
      y.s.close();
      return l;
    };
    expect(await banned(c)).toMatchObject({ ok: false, code: 'banned' });
    // the state file was written at the ban; a restart on the same data dir reads it
    expect(JSON.parse(readFileSync(join(dataDir, 'runs', 'idrun', 'state.json'), 'utf8')).bannedNetworks).toEqual({ '127.0.0.1': 1 });
    await c.close();
    const c2 = await start(dataDir);
    expect(await banned(c2)).toMatchObject({ ok: false, code: 'banned' });
    // a new identity from the same network (127.0.0.1): not banned, on the longer probation
    const z = await hello(c2.url);
    expect((await ask<{ ok: boolean }>(z.s, 'join', { runId: 'idrun' })).ok).toBe(true);
    const run2 = c2.runs.get('idrun')!;
    expect(run2.workers.get(z.workerId)).toMatchObject({ probation: 7, strikes: 0 });
    expect(run2.workers.get(z.workerId)!.banned).toBeUndefined();
    expect(await ask(z.s, 'lease', { runId: 'idrun', version: 0 })).toMatchObject({ ok: true });
  });
});
