// Recycles the ArrayBuffers that gradients are assembled into (shared/codec.ts: ParserLimits.allocate). Without it
// every gradient is a fresh allocation (40 MB for a 10 M-parameter model): its pages are faulted in as its chunks land,
// and the dead ones wait for V8's next full collection to be unmapped, so the coordinator's resident memory ran a few
// gradients above what was live. A buffer comes back only through give(), which the submit handler calls once the run
// has taken what it keeps (SwarmRun.submit copies whatever it holds on to).

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** buffers handed out, and of them those that were recycled */
  taken = 0;
  reused = 0;

  /**
   * sizes: the byte lengths worth keeping (the runs' gradients); at most perSize() buffers of each wait in the pool
   * (the coordinator: as many as its ingest gate lets arrive at once, so a step's uploads all land in recycled buffers)
   */
  constructor(
    private readonly sizes: () => Iterable<number>,
    private readonly perSize: () => number = () => 2,
  ) {}

  /** an ArrayBuffer of exactly n bytes: a recycled one if there is one (its old contents are overwritten by the caller) */
  take(n: number): ArrayBuffer {
    this.taken++;
    const b = this.free.get(n)?.pop();
    if (b) this.reused++;
    return b ?? new ArrayBuffer(n);
  }

  /** b is no longer used by anyone: keep it for the next take of its size (if that size is wanted and there is room) */
  give(b: ArrayBuffer): void {
    const n = b.byteLength;
    if (![...this.sizes()].includes(n)) return;
    let list = this.free.get(n);
    if (!list) this.free.set(n, (list = []));
    if (list.length < this.perSize() && !list.includes(b)) list.push(b);
  }

  /** bytes waiting in the pool */
  get bytes(): number {
    let s = 0;
    for (const [n, l] of this.free) s += n * l.length;
    return s;
  }
}
