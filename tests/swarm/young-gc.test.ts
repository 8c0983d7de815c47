// The coordinator's scavenges that free socket reads' garbage young (coordinator/swarm/young-gc.ts): one per
// `everyBytes` of chunks, run after the tick that crossed the mark, never two queued at once; and V8 gives the
// coordinator its GC here (else the swarm bench's figures would be those of V8's own full collections).
import { describe, expect, it } from 'vitest';
import { YoungGc, type Gc } from '../../coordinator/swarm/young-gc.ts';

const tick = () => new Promise((ok) => setImmediate(ok));

describe('YoungGc', () => {
  it('asks for one scavenge per everyBytes of chunks, after the tick that crossed the mark', async () => {
    const calls: unknown[] = [];
    const y = new YoungGc(1000, ((o) => calls.push(o)) as Gc);
    y.read(600);
    y.read(399);
    await tick();
    expect(calls).toEqual([]);
    y.read(1); // 1000: the mark
    expect(calls).toEqual([]); // not while the chunk that crossed it is still referenced
    y.read(5000); // more in the same tick: still one
    await tick();
    expect(calls).toEqual([{ type: 'minor' }]);
    expect(y.asked).toBe(1);
    y.read(999);
    await tick();
    expect(calls).toHaveLength(1); // counting starts again after each scavenge
    y.read(1);
    await tick();
    expect(calls).toHaveLength(2);
  });

  it('without a GC to call it does nothing', async () => {
    const y = new YoungGc(1, null);
    expect(y.available).toBe(false);
    y.read(10);
    await tick();
    expect(y.asked).toBe(0);
  });

  it("gets V8's GC in this Node, and a scavenge frees dead ArrayBuffers' memory", async () => {
    const y = new YoungGc(1 << 20);
    expect(y.available).toBe(true);
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 16; i++) new Uint8Array(1 << 20).fill(i); // 16 MiB of garbage
    y.read(1 << 20);
    await tick();
    await tick();
    expect(y.asked).toBe(1);
    await new Promise((ok) => setTimeout(ok, 50)); // V8 frees backing stores on a concurrent sweeper
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });
});
