// The protocol against a live coordinator over loopback, with hand-driven socket.io clients (msgpack frames):
// every bad message is refused with a code and a reason in words, and the coordinator goes on serving the
// well-behaved worker beside it. Covers stale versions, duplicate leases, unknown runs, wrong gradient lengths,
// NaN, schema violations, unknown events, a missing ack, another protocol version, talking before hello, and
// malformed frames (garbage bytes, text frames, frames of the wrong packet shape, a gradient frame cut short or with
// bytes after it, a bare msgpack packet without the frame header).
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { CHUNK_BYTES, msgpackFrame, packValue } from '../../shared/codec.ts';
import { PROTOCOL_VERSION, weightsPath, type Lease, type LeaseReply, type Refusal, type SubmitReply } from '../../shared/protocol.ts';
import { ask, connect, getWeights, simWorker, sleep, startCoordinator, tinyRun, until, type SimSocket } from './helpers.ts';

let coord: Coordinator;
let url: string;
let n: number;

beforeAll(async () => {
  coord = await startCoordinator();
  url = coord.url;
  const run = await coord.addRun(tinyRun({ swarm: { target_batch_size: 8 } }), { id: 'r1' });
  n = run.layout.size;
});
afterAll(async () => coord?.close());

async function lease(s: SimSocket): Promise<Lease> {
  for (;;) {
    const r = await ask<LeaseReply>(s, 'lease', { runId: 'r1', version: 0 });
    if (!r.ok) throw new Error(r.reason);
    if ('lease' in r) return r.lease;
    await sleep(r.wait);
  }
}

const grads = (len = n, fill = 0.01) => new Float32Array(len).fill(fill);

/** a healthy worker still gets served (hello, join, its weights) */
async function stillServing(): Promise<void> {
  const w = await simWorker(url, 'r1');
  const r1 = coord.runs.get('r1')!;
  expect((await getWeights(url, 'r1', w.join.run.epoch, r1.version)).params?.length).toBe(n);
  const health = await (await fetch(`${url}api/health`)).json();
  expect(health.ok).toBe(true);
  w.socket.close();
}

describe('protocol refusals', () => {
  it('stale version, duplicate lease, wrong length and NaN are refused with a reason; the good answer counts once', async () => {
    const { socket: s } = await simWorker(url, 'r1');
    const l = await lease(s);
    const stale = await ask<SubmitReply>(s, 'submit', { runId: 'r1', leaseId: l.leaseId, version: l.version + 3, loss: 2, grads: grads() });
    expect(stale).toMatchObject({ ok: false, code: 'stale' });
    expect((stale as Refusal).reason).toMatch(/version 3 but lease .* is for version 0/);
    const short = await ask<SubmitReply>(s, 'submit', { runId: 'r1', leaseId: l.leaseId, version: 0, loss: 2, grads: grads(n - 5) });
    expect(short).toMatchObject({ ok: false, code: 'bad-shape' });
    expect((short as Refusal).reason).toContain(`${n - 5} elements`);
    // the refused lease went back to the queue: take it again
    const l2 = await lease(s);
    expect(l2.batches).toEqual(l.batches);
    const g = grads();
    g[7] = Infinity;
    expect(await ask<SubmitReply>(s, 'submit', { runId: 'r1', leaseId: l2.leaseId, version: 0, loss: 2, grads: g })).toMatchObject({ ok: false, code: 'non-finite' });
    const l3 = await lease(s);
    const ok = await ask<SubmitReply>(s, 'submit', { runId: 'r1', leaseId: l3.leaseId, version: 0, loss: 2, grads: grads() });
    expect(ok.ok).toBe(true);
    const dup = await ask<SubmitReply>(s, 'submit', { runId: 'r1', leaseId: l3.leaseId, version: 0, loss: 2, grads: grads() });
    expect(dup).toMatchObject({ ok: false, code: 'duplicate' });
    const run = coord.runs.get('r1')!;
    expect([...run.applied.keys()]).toEqual(l.batches);
    s.close();
    await stillServing();
  });

  it('unknown run, talking before hello, another protocol version', async () => {
    const s = await connect(url);
    expect(await ask(s, 'lease', { runId: 'r1', version: 0 })).toMatchObject({ ok: false, code: 'not-joined' });
    expect(await ask(s, 'hello', { protocol: PROTOCOL_VERSION + 1, kind: 'sim' })).toMatchObject({ ok: false, code: 'protocol' });
    expect(await ask(s, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim' })).toMatchObject({ ok: true });
    const j = await ask<Refusal>(s, 'join', { runId: 'nope' });
    expect(j).toMatchObject({ ok: false, code: 'unknown-run' });
    expect(j.reason).toContain('r1');
    expect(await ask(s, 'lease', { runId: 'nope', version: 0 })).toMatchObject({ ok: false, code: 'unknown-run' });
    expect(await ask(s, 'submit', { runId: 'nope', leaseId: 'x', version: 0, loss: 1, grads: grads(3) })).toMatchObject({ ok: false, code: 'unknown-run' });
    s.close();
    await stillServing();
  });

  it('schema violations, unknown events and missing acks get a refusal, not a crash', async () => {
    const { socket: s } = await simWorker(url, 'r1');
    const r1 = await ask<Refusal>(s, 'submit', { runId: 'r1', leaseId: 'x', version: -1, grads: 'lots' });
    expect(r1.code).toBe('bad-message');
    expect(r1.reason).toMatch(/version/);
    expect(r1.reason).toMatch(/grads/);
    expect(await ask<Refusal>(s, 'lease', { runId: 'r1', version: 0, extra: 1 })).toMatchObject({ ok: false, code: 'bad-message' });
    expect(await ask<Refusal>(s, 'admin-stop', { runId: 'r1' })).toMatchObject({ ok: false, code: 'bad-message', reason: expect.stringContaining("unknown event 'admin-stop'") });
    const refused: Refusal[] = [];
    s.on('refused', (r) => refused.push(r));
    (s as unknown as { emit(e: string, p: unknown): void }).emit('lease', { runId: 'r1', version: 0 }); // no ack
    await until(() => refused.length === 1, 5000, 'the refused event');
    expect(refused[0].reason).toMatch(/acknowledgement/);
    // extra arguments: the refusal comes through the ack (socket.io puts it last), not as a 'refused' event
    const extra = (p: unknown[]) => (s as unknown as { timeout(ms: number): { emitWithAck(e: string, ...a: unknown[]): Promise<Refusal> } }).timeout(3000).emitWithAck('lease', ...p);
    expect(await extra([{ runId: 'r1', version: 0 }, 'more'])).toMatchObject({ ok: false, code: 'bad-message', reason: expect.stringMatching(/one payload .* got 2/) });
    expect(await extra([])).toMatchObject({ ok: false, code: 'bad-message', reason: expect.stringMatching(/got 0/) });
    expect(refused).toHaveLength(1);
    s.close();
    await stillServing();
  });

  it('a gradient over 64 KiB reaches the run as a view into the frame ws received, not a copy', async () => {
    const big = await coord.addRun(tinyRun({ model: { n_embd: 64 }, swarm: { target_batch_size: 4 } }), { id: 'big' });
    const size = big.layout.size;
    expect(size * 4).toBeGreaterThan(64 << 10); // over one socket read: ws joins the chunks into a buffer of its own
    const seen: Float32Array[] = [];
    const submit = big.submit.bind(big);
    big.submit = (workerId, sub) => {
      if (sub.grads) seen.push(sub.grads);
      return submit(workerId, sub);
    };
    const { socket: s } = await simWorker(url, 'big');
    const r = await ask<LeaseReply>(s, 'lease', { runId: 'big', version: 0 });
    if (!r.ok || !('lease' in r)) throw new Error(JSON.stringify(r));
    const reply = await ask<SubmitReply>(s, 'submit', { runId: 'big', leaseId: r.lease.leaseId, version: 0, loss: 2, grads: grads(size, 0.5) });
    expect(reply.ok).toBe(true);
    expect(seen).toHaveLength(1);
    // a view has the rest of its frame around it in its ArrayBuffer; a copy owns exactly its bytes
    expect(seen[0].buffer.byteLength).toBeGreaterThan(seen[0].byteLength);
    expect(seen[0].every((x) => x === 0.5)).toBe(true);
    s.close();
  });

  it('a gradient over 1 MiB arrives as a head and chunks, into a recycled array of its exact size, bit for bit; a head over the largest model is refused', async () => {
    const run = await coord.addRun(tinyRun({ model: { n_layer: 2, n_embd: 128 }, swarm: { target_batch_size: 4 } }), { id: 'chunked' });
    const size = run.layout.size;
    expect(size * 4).toBeGreaterThan(CHUNK_BYTES);
    const seen: Float32Array[] = [];
    const submit = run.submit.bind(run);
    run.submit = (workerId, sub) => {
      if (sub.grads) seen.push(sub.grads);
      return submit(workerId, sub);
    };
    const { socket: s } = await simWorker(url, 'chunked');
    for (let k = 0; k < 2; k++) {
      const r = await ask<LeaseReply>(s, 'lease', { runId: 'chunked', version: run.version });
      if (!r.ok || !('lease' in r)) throw new Error(JSON.stringify(r));
      const g = new Float32Array(size).map(() => Math.random() - 0.5);
      const taken = coord.gradientBuffers.taken;
      expect(await ask<SubmitReply>(s, 'submit', { runId: 'chunked', leaseId: r.lease.leaseId, version: r.lease.version, loss: 2, grads: g })).toMatchObject({ ok: true });
      expect(coord.gradientBuffers.taken).toBe(taken + 1);
      expect(seen[k].buffer.byteLength).toBe(size * 4);
      expect(new Uint32Array(seen[k].buffer)).toEqual(new Uint32Array(g.buffer));
    }
    // the second gradient was assembled in the first one's buffer, recycled once the run had summed it
    expect(seen[1].buffer).toBe(seen[0].buffer);
    expect(coord.gradientBuffers.reused).toBeGreaterThan(0);
    // a head announcing more than the largest run's gradient closes that connection before anything is allocated
    const largest = Math.max(...[...coord.runs.values()].map((x) => x.layout.size));
    const closed = new Promise<string>((ok) => s.once('disconnect', ok));
    (s as unknown as { emit(e: string, p: unknown): void }).emit('submit', { runId: 'chunked', leaseId: 'x', version: 0, loss: 2, grads: new Float32Array(largest + 1) });
    expect(await closed).toMatch(/transport close|parse error|io server disconnect/);
    await stillServing();
  });

  it("weights are a GET of the run's current version (immutable, bit-exact), announced by a 'version' notice; a passed version or another epoch is 404", async () => {
    const run = await coord.addRun(tinyRun({ swarm: { target_batch_size: 4 } }), { id: 'w' });
    const { socket: s, join } = await simWorker(url, 'w');
    const { epoch } = join.run;
    expect(epoch).toMatch(/^[0-9a-f]+$/);
    expect(join.version).toBe(0);
    const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
    const v0 = await getWeights(url, 'w', epoch, 0);
    expect(v0.status).toBe(200);
    expect(v0.cache).toContain('immutable');
    expect(bits(v0.params!)).toEqual(bits(run.params));
    const notices: { runId: string; version: number }[] = [];
    s.on('version', (m) => notices.push(m));
    // one step: leases until the target batch is in, each answered with random values
    while (run.version === 0) {
      const r = await ask<LeaseReply>(s, 'lease', { runId: 'w', version: 0 });
      if (!r.ok || !('lease' in r)) throw new Error(JSON.stringify(r));
      const g = new Float32Array(run.layout.size).map(() => Math.random() - 0.5);
      expect(await ask<SubmitReply>(s, 'submit', { runId: 'w', leaseId: r.lease.leaseId, version: 0, loss: 2, grads: g })).toMatchObject({ ok: true });
    }
    await until(() => notices.length === 1, 5000, "the 'version' notice");
    expect(notices[0]).toEqual({ runId: 'w', version: 1 });
    const v1 = await getWeights(url, 'w', epoch, 1);
    expect(bits(v1.params!)).toEqual(bits(run.params));
    expect(bits(v1.params!)).not.toEqual(bits(v0.params!));
    const gone = await getWeights(url, 'w', epoch, 0);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ version: 1 });
    expect(String((gone.body as { error: string }).error)).toMatch(/version 0 .* is gone: the run is at version 1/);
    expect((await getWeights(url, 'w', 'ffff', 1)).status).toBe(404);
    expect((await getWeights(url, 'nope', epoch, 1)).status).toBe(404);
    // the socket has no 'weights' request any more: it is an unknown event, refused
    const old = await ask<Refusal>(s, 'weights', { runId: 'w' });
    expect(old).toMatchObject({ ok: false, code: 'bad-message' });
    s.close();
    await stillServing();
  });

  it('a weights download whose client leaves mid-way, with more requests pipelined behind it, holds nothing: the next step writes in place', async () => {
    // ~1.2 M parameters: 5 MB of weights, more than the sockets buffer for a client that does not read
    const run = await coord.addRun(tinyRun({ model: { n_layer: 4, n_head: 4, n_embd: 160 }, swarm: { target_batch_size: 4 } }), { id: 'w-left' });
    const { socket: s, join } = await simWorker(url, 'w-left');
    const downloads = (coord as unknown as { downloads: Map<unknown, number> }).downloads;
    const raw = netConnect(Number(new URL(url).port), '127.0.0.1');
    await new Promise((ok) => raw.once('connect', ok));
    const get = `GET /${weightsPath('w-left', join.run.epoch, 0)} HTTP/1.1\r\nHost: x\r\n\r\n`;
    raw.write(get + get + get);
    raw.pause(); // reads nothing
    await until(() => downloads.size > 0, 5000, 'the download to start');
    raw.destroy();
    await until(() => downloads.size === 0, 5000, "every download's count released");
    const before = run.params;
    while (run.version === 0) {
      const r = await ask<LeaseReply>(s, 'lease', { runId: 'w-left', version: 0 });
      if (!r.ok || !('lease' in r)) throw new Error(JSON.stringify(r));
      const g = new Float32Array(run.layout.size).map(() => (Math.random() - 0.5) * 1e-3);
      expect(await ask<SubmitReply>(s, 'submit', { runId: 'w-left', leaseId: r.lease.leaseId, version: 0, loss: 2, grads: g })).toMatchObject({ ok: true });
    }
    expect(run.params).toBe(before); // stepped in place
    s.close();
    await stillServing();
  });

  it('malformed frames close only that connection', async () => {
    const submit = packValue([2, '/', ['submit', { runId: 'r1', leaseId: 'r1.0.1', version: 0, loss: 1, grads: new Float32Array(n) }], 7]);
    const hello = packValue([2, '/', ['hello', { protocol: PROTOCOL_VERSION, kind: 'sim' }], 8]);
    const bare = hello.subarray(4); // the skeleton alone: msgpack as the old wire format had it
    for (const frame of [
      new Uint8Array([0xc1, 0xff, 0x00, 0x13]),
      packValue({ not: 'a packet' }),
      packValue([9, '/', null, null]),
      packValue([2, '/', [42], null]),
      msgpackFrame(new Uint8Array([0xc1, 0xc1])),
      submit.subarray(0, submit.length - 4),
      Uint8Array.from([...submit, 0]),
      bare,
    ]) {
      const s = await connect(url);
      const closed = new Promise<string>((ok) => s.once('disconnect', (why) => ok(why)));
      (s as unknown as { io: { engine: { write(b: Uint8Array): void } } }).io.engine.write(frame);
      expect(await closed).toMatch(/transport close|io server disconnect/);
    }
    const t = await connect(url);
    const closed = new Promise<string>((ok) => t.once('disconnect', (why) => ok(why)));
    (t as unknown as { io: { engine: { write(b: string): void } } }).io.engine.write('2["hello",{}]');
    expect(await closed).toBeTruthy();
    await stillServing();
  });
});

describe('rate limit', () => {
  it('a flooding connection is refused over the rate and closed if it keeps on; others are served', async () => {
    const { Coordinator } = await import('../../coordinator/swarm/server.ts');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const c = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gs-rate-')), token: 'x'.repeat(20), rateLimit: { perSecond: 20, burst: 10, disconnectAfter: 50 } });
    const u = await c.listen();
    await c.addRun(tinyRun(), { id: 'r' });
    const flood = await connect(u);
    const replies = await Promise.all(Array.from({ length: 30 }, () => ask<Refusal | { ok: true }>(flood, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim' })));
    const limited = replies.filter((r) => !r.ok && r.code === 'rate-limited');
    expect(limited.length).toBeGreaterThanOrEqual(15);
    expect(replies.filter((r) => r.ok).length).toBeGreaterThanOrEqual(10);
    expect((limited[0] as Refusal).reason).toMatch(/over 20 messages\/s/);
    const closed = new Promise<string>((ok) => flood.once('disconnect', ok));
    for (let i = 0; i < 80; i++) (flood as unknown as { emit(e: string, p: unknown, a: () => void): void }).emit('hello', { protocol: PROTOCOL_VERSION, kind: 'sim' }, () => {});
    expect(await closed).toBe('io server disconnect');
    const calm = await connect(u);
    expect(await ask(calm, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim' })).toMatchObject({ ok: true });
    calm.close();
    await c.close();
  });
});
