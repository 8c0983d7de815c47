// Robust aggregation against faulty and hostile volunteers (pure functions over flat gradients; no state).
//  - screenNorm: a gradient whose norm is over `factor` × the median of recent accepted norms is refused;
//  - trimmedMean: coordinate-wise, the top and bottom `trim` share of values dropped (Yin et al. 2018);
//  - centeredClip: iterative clipping around the current estimate, v ← v + mean_i clip_τ(g_i − v) (Karimireddy,
//    He & Jaggi 2021; BTARD, Gorbunov et al. 2021): a few workers sending huge vectors move v by at most τ each.
// Every gradient here is one lease's per-batch mean gradient, so honest parts have comparable norms.

/**
 * Σ a[i]² in float64, four partial sums (V8 does not vectorise; the chains run in parallel). Finite exactly when every
 * element is: a NaN or ±Inf makes it NaN or +Inf, and float32 squares (≤ 1.2e77) cannot overflow a float64 sum.
 */
export function sumOfSquares(a: Float32Array): number {
  const n = a.length;
  const m = n & ~3;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i < m; i += 4) {
    const x0 = a[i];
    const x1 = a[i + 1];
    const x2 = a[i + 2];
    const x3 = a[i + 3];
    s0 += x0 * x0;
    s1 += x1 * x1;
    s2 += x2 * x2;
    s3 += x3 * x3;
  }
  for (; i < n; i++) s0 += a[i] * a[i];
  return s0 + s1 + s2 + s3;
}

export function l2(a: Float32Array): number {
  return Math.sqrt(sumOfSquares(a));
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** ‖a − b‖ / max(‖a‖, ‖b‖): 0 for equal vectors, ~1e-6 for honest fp differences between GPUs */
export function relDistance(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  const n = Math.max(l2(a), l2(b));
  return n === 0 ? (d === 0 ? 0 : Infinity) : Math.sqrt(d) / n;
}

/** what a NormScreen remembers (checkpointed with the run, so a restart does not open a new warm-up) */
export interface NormHistory {
  /** per-batch norms of gradients that were applied, oldest first */
  accepted: number[];
  /** per-batch norms of every finite gradient that arrived (accepted or not), oldest first */
  seen: number[];
}

/**
 * The screen against the median of recent gradient norms. Its reference is the median of the norms of gradients the
 * run applied (they passed the screen and, where spot-checked, a comparison), once `warmup` of them exist. Until
 * then it screens against the median of every norm seen so far, from 3 on: with attackers a minority of the senders
 * that median is an honest one, so a 1000× gradient early in a run no longer gets in (and inflates the median
 * for a while) just because it came first. Only the very first two gradients of a run go unscreened.
 */
export class NormScreen {
  private accepted: number[] = [];
  private seen: number[] = [];

  constructor(
    /** refuse above factor × median; 0 turns screening off */
    readonly factor: number,
    readonly window = 64,
    /** the median of applied norms is trusted from this many on */
    readonly warmup = 4,
  ) {}

  /** the median the screen compares with: of applied norms after the warm-up, of seen norms (≥ 3) during it */
  get medianNorm(): number {
    if (this.accepted.length >= this.warmup) return median(this.accepted);
    return this.seen.length >= 3 ? median(this.seen) : NaN;
  }

  /** the largest per-batch norm let through: factor × the median (Infinity while off or before any reference) */
  get cap(): number {
    const m = this.medianNorm;
    return this.factor > 0 && Number.isFinite(m) ? this.factor * m : Infinity;
  }

  /** undefined when a gradient of this per-batch norm passes (its norm is remembered as seen), else why not */
  check(norm: number): string | undefined {
    const m = this.medianNorm;
    const warm = this.accepted.length < this.warmup;
    push(this.seen, norm, this.window);
    if (this.factor > 0 && Number.isFinite(m) && norm > this.factor * m) {
      return `gradient norm ${norm.toPrecision(3)} is over ${this.factor}× the median ${m.toPrecision(3)} of recent gradients${warm ? ' (of those seen so far: the run is young)' : ''}`;
    }
    return undefined;
  }

  /** a gradient of this per-batch norm was applied */
  accept(norm: number): void {
    push(this.accepted, norm, this.window);
  }

  snapshot(): NormHistory {
    return { accepted: [...this.accepted], seen: [...this.seen] };
  }

  restore(h: NormHistory): void {
    const ok = (xs: unknown) => (Array.isArray(xs) ? xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0).slice(-this.window) : []);
    this.accepted = ok(h.accepted);
    this.seen = ok(h.seen);
  }
}

function push(xs: number[], x: number, window: number): void {
  xs.push(x);
  if (xs.length > window) xs.shift();
}

/** coordinate-wise trimmed mean of parts into out: drop ⌊trim·k⌋ values from each end (at least one kept) */
export function trimmedMean(parts: Float32Array[], trim: number, out: Float32Array): void {
  const k = parts.length;
  const cut = Math.min(Math.floor(trim * k), Math.floor((k - 1) / 2));
  const col = new Float64Array(k);
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < k; j++) col[j] = parts[j][i];
    col.sort();
    let s = 0;
    for (let j = cut; j < k - cut; j++) s += col[j];
    out[i] = s / (k - 2 * cut);
  }
}

/**
 * CenteredClip: start from `start` (e.g. the coordinate-wise median or the last aggregate), then `iters` times
 * v ← v + (1/k) Σ_i (g_i − v) · min(1, τ / ‖g_i − v‖). τ ≤ 0 picks the median distance of the parts to the start.
 */
export function centeredClip(parts: Float32Array[], start: Float32Array, tau: number, iters: number, out: Float32Array): void {
  const n = out.length;
  const k = parts.length;
  out.set(start);
  const step = new Float64Array(n);
  for (let it = 0; it < iters; it++) {
    const dists = parts.map((g) => {
      let d = 0;
      for (let i = 0; i < n; i++) d += (g[i] - out[i]) ** 2;
      return Math.sqrt(d);
    });
    const t = tau > 0 ? tau : median(dists);
    step.fill(0);
    for (let j = 0; j < k; j++) {
      const c = dists[j] > t && dists[j] > 0 ? t / dists[j] : 1;
      const g = parts[j];
      for (let i = 0; i < n; i++) step[i] += (g[i] - out[i]) * c;
    }
    for (let i = 0; i < n; i++) out[i] += step[i] / k;
  }
}

/** coordinate-wise median (CenteredClip's default start: robust to a minority of any size of vectors) */
export function coordinateMedian(parts: Float32Array[], out: Float32Array): void {
  trimmedMean(parts, 0.5, out);
}
