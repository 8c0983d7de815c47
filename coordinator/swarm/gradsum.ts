// gradsum.wat's two SIMD passes over every gradient that arrives at the coordinator: sum += g, and Σ g² (the finite
// check and the norm screen's norm at once). The arrays stay plain Float32Arrays (V8's compiled code reads arrays
// over a wasm memory about 30 % slower, which AdamW then paid): each pass stages them through the module's memory a
// block at a time, the copies and the pass all within the core's cache. At 1 M parameters sum += g costs about
// 0.5 ms where the scalar loop took 1.3, and Σ g² 0.3 where it took 0.6 (scalar references: tests/swarm/gradsum.test.ts
// and ./robust.ts).

import { GRADSUM_WASM } from './gradsum-wasm.ts';

interface Kernels {
  memory: WebAssembly.Memory;
  add(dst: number, src: number, n: number): void;
  sumsq(p: number, n: number): number;
}

/** floats staged at a time: two blocks of 256 KiB stay in a core's L2 cache between the copies and the pass */
const BLOCK = 1 << 16;

let staged: { k: Kernels; a: Float32Array; b: Float32Array } | undefined;

/** the module, instantiated once, with its two staging blocks (a at byte 0, b after it) */
function kernels() {
  if (staged) return staged;
  const k = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(GRADSUM_WASM, 'base64')), {}).exports as unknown as Kernels;
  // never grown (see gradsum.wat): its size is declared there
  if (k.memory.buffer.byteLength < 2 * BLOCK * 4) throw new Error(`gradsum.wat declares ${k.memory.buffer.byteLength} bytes of memory; its two blocks take ${2 * BLOCK * 4}`);
  staged = { k, a: new Float32Array(k.memory.buffer, 0, BLOCK), b: new Float32Array(k.memory.buffer, BLOCK * 4, BLOCK) };
  return staged;
}

/** sum += g elementwise (same length), bit for bit the scalar float32 adds */
export function addInto(sum: Float32Array, g: Float32Array): void {
  if (g.length !== sum.length) throw new Error(`adding a gradient of ${g.length} elements to a sum of ${sum.length}`);
  const { k, a, b } = kernels();
  for (let i = 0; i < sum.length; i += BLOCK) {
    const m = Math.min(BLOCK, sum.length - i);
    a.set(sum.subarray(i, i + m));
    b.set(g.subarray(i, i + m));
    k.add(0, BLOCK * 4, m);
    sum.set(m === BLOCK ? a : a.subarray(0, m), i);
  }
}

/**
 * Σ g[i]² in float64. Finite exactly when every element is: a NaN or ±Inf makes it NaN or +Inf. Sums in another
 * order than robust.ts's scalar sumOfSquares, so the two agree to rounding.
 */
export function sumOfSquares(g: Float32Array): number {
  const { k, a } = kernels();
  let s = 0;
  for (let i = 0; i < g.length; i += BLOCK) {
    const m = Math.min(BLOCK, g.length - i);
    a.set(g.subarray(i, i + m));
    s += k.sumsq(0, m);
  }
  return s;
}
