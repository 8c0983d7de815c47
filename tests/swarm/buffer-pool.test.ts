// coordinator/swarm/buffer-pool.ts: gradients' buffers come back for the next upload of their size, only sizes a run
// wants are kept, at most perSize() of each, and a buffer given twice is kept once.
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../coordinator/swarm/buffer-pool.ts';

describe('BufferPool', () => {
  it('recycles wanted sizes up to perSize, refuses others, keeps a buffer once', () => {
    let per = 2;
    const pool = new BufferPool(() => [400, 1200], () => per);
    const a = pool.take(400);
    expect(a.byteLength).toBe(400);
    expect(pool.reused).toBe(0);
    pool.give(a);
    pool.give(a); // twice: still one entry, or two uploads would share it
    expect(pool.bytes).toBe(400);
    const b = pool.take(400);
    expect(b).toBe(a);
    expect(pool.take(400)).not.toBe(a); // the pool is empty again: a fresh one
    expect([pool.taken, pool.reused]).toEqual([3, 1]);
    pool.give(new ArrayBuffer(404)); // no run's gradient has this size (a wrong-shape answer): not kept
    expect(pool.bytes).toBe(0);
    for (let i = 0; i < 4; i++) pool.give(new ArrayBuffer(1200));
    expect(pool.bytes).toBe(2 * 1200); // at most perSize() wait
    per = 3;
    pool.give(new ArrayBuffer(1200));
    expect(pool.bytes).toBe(3 * 1200);
  });
});
