// How every library is timed, the same way: warm up (the first calls compile pipelines), grow the number of
// calls per timed run until a run lasts at least minMs (so a sync's fixed cost does not dominate small ops),
// then take the median over `runs` timed runs. A timed run issues its calls and waits until the device is done.

export interface TimingOptions {
  /** timed runs; the median is reported */
  runs: number;
  /** a timed run lasts at least this long (calls are repeated within it) */
  minMs: number;
  /** at most this many calls per timed run */
  maxReps: number;
  /** untimed single calls first */
  warmup: number;
  /** also time our calls on the GPU's own clock (timestamp queries), where the device offers them */
  gpuClock?: boolean;
}

export const BROWSER_TIMING: TimingOptions = { runs: 7, minMs: 100, maxReps: 64, warmup: 2 };
export const GPU_TIMING: TimingOptions = { runs: 7, minMs: 25, maxReps: 1000, warmup: 2, gpuClock: true };

export interface Timing {
  /** median milliseconds per call */
  ms: number;
  /** calls per timed run */
  reps: number;
  runs: number;
  /** fastest and slowest run, per call */
  minMs: number;
  maxMs: number;
  /** median milliseconds per call on the GPU's clock, when the batch reports it: device time only, without the
   * CPU's cost of recording and submitting (which the wall-clock `ms` includes) */
  gpuMs?: number;
}

/** `batch(reps)` issues `reps` calls and resolves once the device has finished them all, optionally with the
 * milliseconds the device itself spent on them */
export type Batch = (reps: number) => Promise<number | void>;

async function time(batch: Batch, reps: number, gpu?: number[]): Promise<number> {
  const t0 = performance.now();
  const g = await batch(reps);
  const wall = performance.now() - t0;
  if (gpu && typeof g === 'number') gpu.push(g / reps);
  return wall;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function measure(batch: Batch, o: TimingOptions, maxReps = o.maxReps): Promise<Timing> {
  for (let i = 0; i < o.warmup; i++) await batch(1);
  let reps = 1;
  let t = await time(batch, 1);
  while (t < o.minMs && reps < maxReps) {
    // grow at most 8× per step: a short run is mostly fixed cost, so t/reps overestimates the per-call time
    reps = Math.min(maxReps, reps * 8, Math.max(reps + 1, Math.ceil((reps * o.minMs) / Math.max(t, 1e-3))));
    t = await time(batch, reps);
  }
  const per: number[] = [];
  const gpu: number[] = [];
  for (let i = 0; i < o.runs; i++) per.push((await time(batch, reps, gpu)) / reps);
  return { ms: median(per), reps, runs: o.runs, minMs: Math.min(...per), maxMs: Math.max(...per), ...(gpu.length === per.length ? { gpuMs: median(gpu) } : {}) };
}
