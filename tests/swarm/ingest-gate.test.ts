// The coordinator's ingest gate (coordinator/swarm/ingest-gate.ts): gradients (a head and its chunks) arrive on at most
// `slots` sockets at a time, the others are paused at their head and resumed in order as gradients complete; other
// messages pass; a socket paused too long is let in over the budget, a gradient stalled mid-way gives its slot back. Then the same against a live coordinator with a one-gradient budget, driven by
// the benchmark's simulated workers (bench/swarm-sim.ts): uploads take turns and every batch is still applied once.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { randomGradient, SimWorker } from '../../bench/swarm-sim.ts';
import { IngestGate, type EngineConn } from '../../coordinator/swarm/ingest-gate.ts';
import { CHUNK_BYTES, encodeMessages, headChunks } from '../../shared/codec.ts';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { sleep, startCoordinator, tinyRun, until } from './helpers.ts';

class FakeWs extends EventEmitter {
  paused = false;
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  /** a gradient's head arrives, announcing `chunks` chunks (a real head, from the codec) */
  head(chunks: number) {
    const messages = encodeMessages({ g: new Uint8Array(CHUNK_BYTES * (chunks - 1) + 1) });
    expect(headChunks(messages[0])).toBe(chunks);
    this.emit('message', messages[0]);
  }
  /** a chunk, or any other message */
  message(n = 100) {
    this.emit('message', new Uint8Array(n));
  }
}

function conn(ws: FakeWs): EngineConn {
  return { transport: { name: 'websocket', socket: ws }, on: () => {} };
}

let gate: IngestGate | undefined;
let coord: Coordinator | undefined;
afterEach(async () => {
  gate?.close();
  await coord?.close();
  gate = coord = undefined;
});

describe('ingest gate', () => {
  it('lets gradients in on `slots` sockets, pauses the others at their head and resumes them in order; other messages pass', () => {
    gate = new IngestGate({ budgetBytes: 2000 });
    gate.frameBytes = 1000; // 2 slots
    const [a, b, c, d, small] = [new FakeWs(), new FakeWs(), new FakeWs(), new FakeWs(), new FakeWs()];
    for (const w of [a, b, c, d, small]) gate.watch(conn(w));
    for (const w of [a, b, c, d]) w.head(2);
    small.message(60);
    small.message(3 << 20); // a big message that is not a head (ws limits these to maxHttpBufferSize) is not a gradient
    expect([a.paused, b.paused, c.paused, d.paused, small.paused]).toEqual([false, false, true, true, false]);
    expect(gate.waiting).toBe(2);
    a.message();
    expect(c.paused).toBe(true); // a's gradient has a chunk to go
    a.message(); // a's gradient is complete: c goes next
    expect([c.paused, d.paused]).toEqual([false, true]);
    a.message(); // after its gradient, a's messages are not counted as chunks
    expect(d.paused).toBe(true);
    b.emit('close'); // a socket that leaves gives its slot back
    expect(d.paused).toBe(false);
    expect(gate.waiting).toBe(0);
    expect(gate.paused).toBe(2);
    // a new head on a, while c and d hold the slots, waits
    a.head(3);
    expect(a.paused).toBe(true);
    d.emit('close');
    expect(a.paused).toBe(false);
  });

  it('lets a socket in over the budget after maxWaitMs', async () => {
    gate = new IngestGate({ budgetBytes: 1000, maxWaitMs: 50 });
    gate.frameBytes = 1000; // 1 slot
    const [a, b] = [new FakeWs(), new FakeWs()];
    gate.watch(conn(a));
    gate.watch(conn(b));
    a.head(2);
    b.head(2);
    expect(b.paused).toBe(true);
    await sleep(1200); // the gate looks once a second
    expect(b.paused).toBe(false);
    expect(gate.overdueAdmits).toBe(1);
  });

  it('a gradient that stalls mid-way gives its slot back after maxWaitMs', async () => {
    gate = new IngestGate({ budgetBytes: 1000, maxWaitMs: 50 });
    gate.frameBytes = 1000; // 1 slot
    const [a, b] = [new FakeWs(), new FakeWs()];
    gate.watch(conn(a));
    gate.watch(conn(b));
    a.head(3);
    a.message(); // one chunk of three, then nothing
    await sleep(1200);
    expect(gate.stalled).toBe(1);
    b.head(2);
    expect(b.paused).toBe(false);
    a.message();
    a.message(); // a's late chunks pass uncounted; b still holds the slot
    expect(gate.waiting).toBe(0);
  });

  it('a live coordinator with a one-gradient budget: simulated workers take turns uploading, every batch is applied once', async () => {
    coord = await startCoordinator();
    (coord.ingest as unknown as { o: { budgetBytes: number } }).o.budgetBytes = 1; // one frame at a time
    // ~1.2 M parameters: a 5 MB gradient, a head and 5 chunks
    const run = await coord.addRun(tinyRun({ model: { n_layer: 4, n_head: 4, n_embd: 160 }, swarm: { target_batch_size: 16 } }), { id: 'gate' });
    expect(run.layout.size * 4).toBeGreaterThan(4 << 20);
    const sims = await Promise.all([0, 1, 2, 3].map((i) => SimWorker.join(coord!.url, { runId: 'gate', name: `sim-${i}`, ackTimeoutMs: 20_000 })));
    const grads = randomGradient(run.layout.size, 3);
    let stop = false;
    const loops = sims.map((s) => s.run(grads, () => stop));
    await until(() => run.version >= 3, 60_000, 'three steps');
    stop = true;
    await Promise.all(loops);
    expect(coord.ingest.paused).toBeGreaterThan(0);
    expect(coord.ingest.overdueAdmits).toBe(0);
    // 4 batches per step, each applied once, in its own step
    for (let b = 0; b < 12; b++) expect(run.applied.get(b)).toBe(Math.floor(b / 4));
    for (const s of sims) expect(s.stats.accepted).toBeGreaterThan(0);
    // each downloaded the weights of the versions it computed on, whole (bench/swarm-sim.ts's own GET)
    for (const s of sims) {
      expect(s.stats.fetchMs.length).toBeGreaterThan(0);
      expect(s.stats.weightBytes).toBe(s.stats.fetchMs.length * run.layout.size * 4);
    }
    await until(() => sims.every((s) => s.version === run.version), 10_000, "the last 'version' notice");
    for (const s of sims) s.close();
  });
});
