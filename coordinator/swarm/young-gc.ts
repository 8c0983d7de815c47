// Frees the garbage of socket reads while it is young. Every gradient byte arrives in two short-lived ArrayBuffers
// (Node's 64 KiB socket reads, then ws joining them into each 1 MiB chunk) that die as soon as the decoder has copied
// the chunk out (shared/codec.ts). V8 counts ArrayBuffer memory as external and starts a full mark-compact each time
// about 64 MB more of it has been allocated, whether or not it is still alive: at 10M parameters × 64 workers that
// was 24 mark-compacts a second, a fifth of the coordinator's thread, and the dead reads held RSS up to twice the
// model's size. A scavenge (a young-generation GC, well under a millisecond with the coordinator's small heap) after
// every few MiB of chunks frees them before that counter fills (bench/swarm.ts: 10M × 64 ingest per coordinator
// CPU-second 530-580 → 750-830 MB/s, peak RSS 7.9 → 7 × model). It runs from setImmediate, once the chunk that
// crossed the mark is no longer referenced, so that it dies rather than survives into the old generation.
//
// V8 exposes its GC to JS only under --expose-gc: set here at start-up, and taken from a new context (a global
// `gc` is used as it is). Without it (a V8 refusing the flag) nothing is forced and V8 collects on its own.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let exposed: { gc: Gc | undefined } | undefined;

/** V8's gc(), found once per process */
function exposeGc(): Gc | undefined {
  if (exposed) return exposed.gc;
  const g = (globalThis as { gc?: Gc }).gc;
  if (typeof g === 'function') return (exposed = { gc: g }).gc;
  try {
    setFlagsFromString('--expose-gc');
    return (exposed = { gc: runInNewContext('typeof gc === "function" ? gc : undefined') as Gc | undefined }).gc;
  } catch {
    return (exposed = { gc: undefined }).gc;
  }
}

/** bytes of chunks between scavenges: a few MiB, well under V8's 64 MB external-memory trigger (reads + joins: 2×) */
const EVERY_BYTES = 8 << 20;

export class YoungGc {
  /** scavenges asked for */
  asked = 0;
  private since = 0;
  private queued = false;
  constructor(
    private readonly everyBytes = EVERY_BYTES,
    /** V8's GC (null: none, nothing is forced) */
    private readonly gc: Gc | null = exposeGc() ?? null,
  ) {}

  /** whether scavenges can be asked for here */
  get available(): boolean {
    return this.gc !== null;
  }

  /** n bytes of a chunk were read and copied out: their buffers are garbage once this tick ends */
  read(n: number): void {
    if (!this.gc) return;
    this.since += n;
    if (this.since < this.everyBytes || this.queued) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      this.since = 0;
      this.asked++;
      this.gc!({ type: 'minor' });
    });
  }
}
