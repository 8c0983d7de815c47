// A run's gradient sum for the open step, with gradsum.wat's two SIMD passes over every gradient that arrives:
// sum += g, and Σ g² (the finite check and the norm screen's norm at once). The sum lives in a WebAssembly memory of
// its own, made at its size and never grown (growing detaches the memory's old ArrayBuffer, and one detached
// ArrayBuffer anywhere slows every typed array loop in the process: AdamW went 7.1 → 9.1 ms at 1 M parameters). A
// gradient is staged into that memory a block at a time, the copy and the pass both within the core's cache. At 1 M
// parameters sum += g costs about 0.3 ms where the scalar loop took 1.3, Σ g² 0.3 where it took 0.6.

import { GRADSUM_WASM } from './gradsum-wasm.ts';

interface Kernels {
  add(dst: number, src: number, n: number): void;
  sumsq(p: number, n: number): number;
}

/** floats staged at a time: 256 KiB, which stays in a core's L2 cache between the copy and the pass */
const BLOCK = 1 << 16;
const PAGE = 1 << 16;
/** wasm32 addresses 4 GiB */
const MAX_PAGES = 1 << 16;

let compiled: WebAssembly.Module | undefined;

export class GradSum {
  /** Σ of the gradients added since the last clear(): n floats in the memory, after the staging block */
  readonly sum: Float32Array<ArrayBuffer>;
  private readonly stage: Float32Array<ArrayBuffer>;
  private readonly k: Kernels;
  /** the sum's byte offset (the staging block is at 0) */
  private readonly at = BLOCK * 4;

  constructor(readonly n: number) {
    const pages = Math.ceil((this.at + n * 4) / PAGE);
    // strictly under 4 GiB: the kernels' end pointer (start + 4n) must not wrap to 0
    if (this.at + n * 4 >= MAX_PAGES * PAGE) throw new Error(`a model of ${n} parameters is too large for the coordinator's gradient sum (wasm32: fewer than ${(MAX_PAGES * PAGE - this.at) / 4})`);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    compiled ??= new WebAssembly.Module(Buffer.from(GRADSUM_WASM, 'base64'));
    this.k = new WebAssembly.Instance(compiled, { gradsum: { memory } }).exports as unknown as Kernels;
    this.stage = new Float32Array(memory.buffer, 0, BLOCK);
    this.sum = new Float32Array(memory.buffer, this.at, n);
  }

  /** sum += g elementwise (g.length = n), bit for bit the scalar float32 adds */
  add(g: Float32Array): void {
    if (g.length !== this.n) throw new Error(`adding a gradient of ${g.length} elements to a sum of ${this.n}`);
    for (let i = 0; i < this.n; i += BLOCK) {
      const m = Math.min(BLOCK, this.n - i);
      this.stage.set(g.subarray(i, i + m));
      this.k.add(this.at + 4 * i, 0, m);
    }
  }

  /**
   * Σ g[i]² in float64, of any g (the sum itself read in place). Finite exactly when every element is: a NaN or ±Inf
   * makes it NaN or +Inf. Sums in another order than robust.ts's scalar sumOfSquares, so the two agree to rounding.
   */
  sumOfSquares(g: Float32Array): number {
    if (g === this.sum) return this.k.sumsq(this.at, this.n);
    let s = 0;
    for (let i = 0; i < g.length; i += BLOCK) {
      const m = Math.min(BLOCK, g.length - i);
      this.stage.set(g.subarray(i, i + m));
      s += this.k.sumsq(0, m);
    }
    return s;
  }
}
