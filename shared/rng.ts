// Seeded pseudo-random numbers (mulberry32): the same seed gives the same stream in Node and in browsers,
// so a test case or a batch can be reproduced anywhere from its seed alone.
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** fp32-representable uniform values, so GPU and float64 reference see identical inputs */
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  normals(n: number, std = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal() * std;
    return a;
  }
  ints(n: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.int(hi);
    return a;
  }
}

/** a fresh seed per run unless GRADSWARM_SEED pins one (tests print it so a failure can be replayed) */
export function freshSeed(): number {
  const pinned = typeof process !== 'undefined' ? process.env?.GRADSWARM_SEED : undefined;
  return pinned ? Number(pinned) : (Math.random() * 2 ** 31) >>> 0;
}
