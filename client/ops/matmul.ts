// GPU side of the matmul family (shaders/matmul.wgsl): out = op(a) @ op(b) (+ bias), batched, any size,
// transposes folded into strides. `matmul` and `sumRows` are the API other ops build on (projections,
// weight and bias gradients); `selectVariant` is the one place a kernel variant is chosen.
import source from '../../shaders/matmul.wgsl';
import { matmulShape } from '../../shared/reference/matmul.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: GpuTensor;
  /** write into this tensor (its shape must hold (..., M, N) elements) instead of a new one */
  out?: GpuTensor;
  /** out += result instead of out = result (needs `out`) */
  accumulate?: boolean;
  /** sum the result over the batch into one (M, N) matrix: the grad of an operand shared by every batch */
  sumBatch?: boolean;
}

/** a kernel variant and its override constants; tileM x tileN outputs per workgroup; K split `splits` ways */
export interface MatmulVariant {
  kernel: string;
  constants: Record<string, number>;
  tileM: number;
  tileN: number;
  /** split-K: partial products over K ranges, summed by sum_rows (1 or absent: no split) */
  splits?: number;
}

const isSwiftShader = (g: Gpu) => g.isFallback || /swiftshader/i.test(g.adapterName);

/** matmul_reg: (RX, RY) invocations of 8 x 16 outputs each */
export const regVariant = (RX: number, RY: number, splits = 1): MatmulVariant => ({ kernel: 'matmul_reg', constants: { RX, RY }, tileM: 8 * RY, tileN: 16 * RX, splits });
/** matmul_tiled: (TX, TY) invocations of TM x TN outputs each, BK-deep slabs in workgroup memory */
export const tiledVariant = (TX: number, TY: number, TM: number, TN: number, BK: number, splits = 1): MatmulVariant => ({
  kernel: 'matmul_tiled',
  constants: { TX, TY, TM, TN, BK },
  tileM: TY * TM,
  tileN: TX * TN,
  splits,
});

/** K per split at least this long: shorter ranges cost more in partial sums than they gain in parallelism */
const MIN_SPLIT_K = 256;

/** splits so that `tiles` workgroups become about `target`, each split at least MIN_SPLIT_K deep */
function splitsFor(tiles: number, K: number, target: number): number {
  if (tiles >= target / 2) return 1;
  return Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(K / MIN_SPLIT_K), 64));
}

/**
 * The variant for an (M, K, N) problem with Z output batches on this adapter: the one place a matmul kernel
 * is chosen (as tfjs's BatchMatMul_impl). Measured choices:
 * - SwiftShader (CPU): matmul_reg's 8x16 register blocks (about 2.2 GFLOPS at 512^3 on 2 shared cores, where
 *   4x4 blocks reach 1.2 and a workgroup-memory tile 0.3); one workgroup shape for every size, since each new
 *   pipeline costs SwiftShader about 2 s to compile. K is split only when there are fewer workgroups than cores.
 * - Real GPUs: matmul_tiled with 64x64 tiles of 4x4 per invocation. On an H200 (Dawn/Vulkan) it reached 10
 *   TFLOPS at 1024^3 and 17 at 4096^3 (128x64 tiles of 8x4: the same at 4096^3, less at 1024^3; 8x8 per
 *   invocation: 2, it spills). Small outputs with a long K (weight gradients dW = Xᵀ dY) are split over K so
 *   that about 128 workgroups run: 128x4096x128 went from 0.2 to 1.8 TFLOPS, 384x8192x128 from 0.7 to 4.4-6.
 */
export function selectVariant(g: Gpu, M: number, K: number, N: number, Z: number): MatmulVariant {
  const tiles = (v: MatmulVariant) => Math.ceil(M / v.tileM) * Math.ceil(N / v.tileN) * Z;
  if (isSwiftShader(g)) {
    const v = regVariant(8, 8);
    const cores = (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 4;
    return { ...v, splits: splitsFor(tiles(v), K, 2 * cores) };
  }
  const v = tiledVariant(16, 16, 4, 4, 16);
  return { ...v, splits: splitsFor(tiles(v), K, 128) };
}

/** variant override for tests and benchmarks: every variant must be correct on every adapter */
let forced: ((M: number, K: number, N: number, Z: number) => MatmulVariant) | null = null;
export function forceMatmulVariant(f: typeof forced): void {
  forced = f;
}

/** out (..., M, N) = op(a) @ op(b) (+ bias) (+ out's previous contents when accumulate). Shapes as above. */
export function matmul(g: Gpu, a: GpuTensor, b: GpuTensor, opts: MatmulOptions = {}): GpuTensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const s = matmulShape(a.shape, b.shape, transA, transB, opts.bias?.shape);
  const { M, K, N } = s;
  let B = s.B;
  let Mk = M; // rows of the kernel's problem: a batched, untransposed a over a shared b is one (B*M, K) matrix
  const sumBatch = !!opts.sumBatch && (s.aBatched || s.bBatched);
  if (!sumBatch && s.aBatched && !s.bBatched && !transA) {
    Mk = B * M;
    B = 1;
  }
  const Z = sumBatch ? 1 : B; // output batches
  const zl = sumBatch ? B : 1; // batches summed into each
  const outShape = sumBatch ? [M, N] : [...s.batch, M, N];
  if (opts.accumulate && !opts.out) throw new Error('matmul: accumulate needs an out tensor to add to');
  let out = opts.out;
  if (out) {
    if (numel(out.shape) !== numel(outShape)) throw new Error(`matmul: out is ${shapeStr(out.shape)} but the result is ${shapeStr(outShape)}`);
    if (out.buffer === a.buffer || out.buffer === b.buffer || out.buffer === opts.bias?.buffer) throw new Error('matmul: out must not share a buffer with a, b or bias');
  } else out = g.tensor(outShape);
  if (Mk * N * Z === 0) return out;
  const v = forced?.(Mk, K, N, Z) ?? selectVariant(g, Mk, K, N, Z);
  // split-K: K ranges of kc (a multiple of 16), the last one shorter
  let kc = K;
  let S = 1;
  if ((v.splits ?? 1) > 1 && K > 16) {
    kc = Math.ceil(K / v.splits! / 16) * 16;
    S = Math.ceil(K / kc);
  }
  const wx = Math.ceil(N / v.tileN);
  const wy = Math.ceil(Mk / v.tileM);
  const max = g.limits.maxComputeWorkgroupsPerDimension;
  if (wx > max || wy > max || Z * S > max) throw new Error(`matmul: (${Z}, ${Mk}, ${N}) is too large for one dispatch (${max} workgroups per dimension)`);
  const strides = [
    s.aBatched ? M * K : 0,
    s.bBatched ? K * N : 0,
    ...(transA ? [1, M] : [K, 1]), // op(a) (M, K)
    ...(transB ? [1, K] : [N, 1]), // op(b) (K, N)
  ];
  const dest = S > 1 ? g.tensor([S, Z, Mk, N]) : out; // split partial products, summed below
  const direct = S === 1;
  g.run({
    kernel: v.kernel,
    constants: v.constants,
    u32: [Mk, N, K, zl, Z, kc, ...strides, direct && opts.bias ? 1 : 0, direct && opts.accumulate ? 1 : 0],
    buffers: [a, b, opts.bias ?? a, dest],
    workgroups: [wx, wy, Z * S],
  });
  if (!direct) {
    sumRowsInto(g, dest, S, Z * Mk * N, out, !!opts.accumulate, opts.bias);
    g.release(dest);
  }
  return out;
}

const SW = 64;

function sumRowsInto(g: Gpu, x: GpuTensor, rows: number, cols: number, out: GpuTensor, accumulate: boolean, bias?: GpuTensor): void {
  g.run({
    kernel: 'sum_rows',
    constants: { SW },
    u32: [rows, cols, accumulate ? 1 : 0, bias ? numel(bias.shape) : 0],
    buffers: [x, bias ?? x, out],
    workgroups: g.grid(Math.ceil(cols / SW)),
  });
}

/** out[n] = Σ_r x[r, n] over a (rows, cols) row-major matrix (+ out when accumulate): bias gradients. */
export function sumRows(g: Gpu, x: GpuTensor, rows: number, cols: number, opts: { out?: GpuTensor; accumulate?: boolean } = {}): GpuTensor {
  if (rows * cols !== numel(x.shape)) throw new Error(`sumRows: x is ${shapeStr(x.shape)}, not ${rows} rows of ${cols}`);
  if (opts.accumulate && !opts.out) throw new Error('sumRows: accumulate needs an out tensor to add to');
  const out = opts.out ?? g.tensor([cols]);
  if (numel(out.shape) !== cols) throw new Error(`sumRows: out is ${shapeStr(out.shape)} but must hold ${cols} sums`);
  if (out.buffer === x.buffer) throw new Error('sumRows: out must not share a buffer with x');
  sumRowsInto(g, x, rows, cols, out, !!opts.accumulate);
  return out;
}

const ops: GpuOp[] = [
  {
    name: 'matmul',
    forward: (g, i, o) => ({ out: matmul(g, i.a, i.b, { transA: !!o.transpose_a, transB: !!o.transpose_b, bias: i.bias }) }),
    backward(g, i, o, _out, d) {
      const transA = !!o.transpose_a;
      const transB = !!o.transpose_b;
      const s = matmulShape(i.a.shape, i.b.shape, transA, transB);
      const dout = d.out; // (..., M, N)
      // da = dout @ op(b)ᵀ, laid out as a; summed over the batch when a is shared
      const sumA = !s.aBatched;
      const da = transA ? matmul(g, i.b, dout, { transA: transB, transB: true, sumBatch: sumA }) : matmul(g, dout, i.b, { transB: !transB, sumBatch: sumA });
      // db = op(a)ᵀ @ dout, laid out as b; summed over the batch when b is shared
      const sumB = !s.bBatched;
      const db = transB ? matmul(g, dout, i.a, { transA: true, transB: transA, sumBatch: sumB }) : matmul(g, i.a, dout, { transA: !transA, sumBatch: sumB });
      const grads: Record<string, GpuTensor> = { a: { ...da, shape: [...i.a.shape] }, b: { ...db, shape: [...i.b.shape] } };
      if (i.bias) grads.bias = sumRows(g, dout, s.B * s.M, s.N);
      return grads;
    },
  },
];

export const matmulFamily: OpFamily = {
  kernels: kernels('matmul.wgsl', source, {
    matmul_reg: ['read', 'read', 'read', 'rw'],
    matmul_tiled: ['read', 'read', 'read', 'rw'],
    sum_rows: ['read', 'read', 'rw'],
  }),
  ops,
};
