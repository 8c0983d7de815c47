// GPU side of the embedding family (shaders/embedding.wgsl): the lookup, and its deterministic scatter-add
// backward (stable radix sort of positions by index, row ranges, chunk sums for frequent rows, one thread per
// (used row, 4 channels) summing in an order fixed by idx alone).
import source from '../../shaders/embedding.wgsl';
import { paddingRow } from '../../shared/reference/embedding.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

const WG = 256;
const TILE = 256; // positions per workgroup in the radix passes (the shader's TILE)
const BINS = 256; // 8-bit digits
const NO_PAD = 0xffffffff;
const CHUNK = 64; // sorted positions per precomputed chunk sum (the shader's CHUNK)

interface Params {
  n: number;
  C?: number;
  V?: number;
  shift?: number;
  tiles?: number;
  first?: number;
  pad?: number;
  accumulate?: number;
}
// the shader's Params struct, every field always present (the uniform binding must cover the whole struct)
const u32 = (q: Params) => [q.n, q.C ?? 0, q.V ?? 0, q.shift ?? 0, q.tiles ?? 0, q.first ?? 0, q.pad ?? NO_PAD, q.accumulate ?? 0];

function checkIdx(op: string, idx: GpuTensor): void {
  if (idx.dtype !== 'i32') throw new Error(`${op}: idx must be an i32 tensor, got ${idx.dtype}`);
}

/** out (idx.shape..., C) = weight[idx]; idx is i32 of any shape, weight (V, C). One dispatch. */
export function embedding(g: Gpu, idx: GpuTensor, weight: GpuTensor): GpuTensor {
  checkIdx('embedding', idx);
  if (weight.shape.length !== 2) throw new Error(`embedding: weight must be 2-D (V, C), got shape ${shapeStr(weight.shape)}`);
  const [V, C] = weight.shape;
  const n = numel(idx.shape) * C;
  const out = g.tensor([...idx.shape, C]);
  g.run({ kernel: 'embedding_fwd', u32: u32({ n, C, V }), buffers: [idx, weight, out], workgroups: g.grid(Math.ceil(n / WG)) });
  return out;
}

/**
 * Sort the positions 0..N-1 of idx by index, stably (equal indices stay in position order): 8-bit LSD radix
 * passes, as many as V's bit length needs (keys run to V: out-of-range indices become V and sort last).
 * Returns the sorted keys and positions (N each); the caller releases them.
 */
function sortPositions(g: Gpu, idx: GpuTensor, N: number, V: number): { keys: GpuTensor; pos: GpuTensor } {
  const passes = Math.max(1, Math.ceil((32 - Math.clz32(V)) / 8));
  const tiles = Math.ceil(N / TILE);
  const hist = g.tensor([BINS * tiles], 'i32', 'embedding hist');
  const ping = [g.tensor([N], 'i32', 'embedding keys'), g.tensor([N], 'i32', 'embedding positions')];
  const pong = passes > 1 ? [g.tensor([N], 'i32', 'embedding keys'), g.tensor([N], 'i32', 'embedding positions')] : ping;
  let [keys, vals] = [idx, idx]; // first pass: keys from idx, positions are implicit (vals unused)
  for (let pass = 0; pass < passes; pass++) {
    const [kOut, vOut] = pass % 2 ? pong : ping;
    const q = { n: N, V, shift: 8 * pass, tiles, first: pass === 0 ? 1 : 0 };
    const wg = g.grid(tiles);
    g.run({ kernel: 'emb_sort_hist', u32: u32(q), buffers: [keys, hist], workgroups: wg });
    g.run({ kernel: 'emb_sort_scan', u32: u32({ n: BINS * tiles }), buffers: [hist], workgroups: [1] });
    g.run({ kernel: 'emb_sort_scatter', u32: u32(q), buffers: [keys, vals, hist, kOut, vOut], workgroups: wg });
    [keys, vals] = [kOut, vOut];
  }
  const spare = new Set([...ping, ...pong]); // the scratch pair not holding the result
  spare.delete(keys);
  spare.delete(vals);
  g.release(hist, ...spare);
  return { keys, pos: vals };
}

export interface EmbeddingBackwardOptions {
  /** write into this (V, C) tensor instead of a new one */
  out?: GpuTensor;
  /** add into `out` (used rows only) instead of overwriting it: GPT's tied LM head adds the embedding grad */
  accumulate?: boolean;
  /** this row gets no gradient (PyTorch's padding_idx; negative counts from the end) */
  paddingIdx?: number | null;
}

/**
 * dweight (V, C) of out = weight[idx], given dout (idx.shape..., C): a race-free, bit-for-bit deterministic
 * scatter-add (3·passes + 4 dispatches, plus a zero fill of dweight when N < V: a dispatch on GPUs, a
 * clearBuffer on SwiftShader; passes = ceil(bit length of V / 8): 2 for GPT-2's 50257). Rows never used get 0
 * (or, with accumulate, are left as they were). Work is launched over min(V, N) slots: by row when every row
 * may be used (V ≤ N: the kernel writes all rows, zeros included), by sorted position when most rows are not
 * (N < V: only the first position of each row's run sums, onto a zeroed dweight).
 */
export function embeddingBackward(g: Gpu, idx: GpuTensor, dout: GpuTensor, V: number, o: EmbeddingBackwardOptions = {}): GpuTensor {
  checkIdx('embeddingBackward', idx);
  const C = dout.shape[dout.shape.length - 1];
  if (shapeStr(dout.shape) !== shapeStr([...idx.shape, C])) {
    throw new Error(`embeddingBackward: dout has shape ${shapeStr(dout.shape)} but idx is ${shapeStr(idx.shape)}: dout must be (idx.shape..., C)`);
  }
  if (!(Number.isInteger(V) && V >= 1)) throw new Error(`embeddingBackward: V must be a positive integer, got ${V}`);
  if (o.out && shapeStr(o.out.shape) !== shapeStr([V, C])) {
    throw new Error(`embeddingBackward: out has shape ${shapeStr(o.out.shape)}, expected (${V}, ${C})`);
  }
  if (o.accumulate && !o.out) throw new Error('embeddingBackward: accumulate needs an existing grad tensor in `out`');
  const pad = paddingRow(o.paddingIdx, V);
  const N = numel(idx.shape);
  const dweight = o.out ?? g.tensor([V, C], 'f32', 'embedding dweight');
  if (N === 0) {
    if (!o.accumulate) g.fill(dweight, 0);
    return dweight;
  }
  const { keys, pos } = sortPositions(g, idx, N, V);
  const byRun = N < V; // launch over min(V, N) slots (see above): the one place that picks
  const range = g.tensor([V, 2], 'i32', 'embedding row ranges');
  if (!byRun) g.fill(range, 0, true); // by run reads the ranges of used rows only
  g.run({ kernel: 'emb_row_ranges', u32: u32({ n: N, V }), buffers: [keys, range], workgroups: g.grid(Math.ceil(N / WG)) });
  // sums of the aligned chunks of CHUNK sorted positions that lie inside one row (frequent tokens)
  const chunks = Math.floor(N / CHUNK);
  const G = Math.ceil(C / 4); // each thread sums 4 channels
  const partial = g.tensor([Math.max(1, chunks * C)], 'f32', 'embedding chunk sums');
  const padRow = pad < 0 ? NO_PAD : pad;
  if (chunks > 0) {
    const n = chunks * G;
    g.run({ kernel: 'emb_chunk_sums', u32: u32({ n, C, V, pad: padRow }), buffers: [keys, pos, dout, partial], workgroups: g.grid(Math.ceil(n / WG)) });
  }
  const accumulate = o.accumulate ? 1 : 0;
  if (byRun) {
    if (!accumulate) g.fill(dweight, 0);
    const n = N * G;
    const q = { n, C, V, pad: padRow, accumulate };
    g.run({ kernel: 'embedding_bwd_runs', u32: u32(q), buffers: [keys, pos, dout, partial, dweight, range], workgroups: g.grid(Math.ceil(n / WG)) });
  } else {
    const n = V * G;
    const q = { n, C, V, pad: padRow, accumulate };
    g.run({ kernel: 'embedding_bwd', u32: u32(q), buffers: [range, pos, dout, partial, dweight], workgroups: g.grid(Math.ceil(n / WG)) });
  }
  g.release(keys, pos, range, partial);
  return dweight;
}

const ops: GpuOp[] = [
  {
    name: 'embedding',
    forward: (g, i) => ({ out: embedding(g, i.idx, i.weight) }),
    backward: (g, i, o, _out, d) => ({
      weight: embeddingBackward(g, i.idx, d.out, i.weight.shape[0], { paddingIdx: o.padding_idx as number | null }),
    }),
  },
];

export const embeddingFamily: OpFamily = {
  kernels: kernels('embedding.wgsl', source, {
    embedding_fwd: ['read', 'read', 'rw'],
    emb_sort_hist: ['read', 'rw'],
    emb_sort_scan: ['rw'],
    emb_sort_scatter: ['read', 'read', 'read', 'rw', 'rw'],
    emb_row_ranges: ['read', 'rw'],
    emb_chunk_sums: ['read', 'read', 'read', 'rw'],
    embedding_bwd: ['read', 'read', 'read', 'read', 'rw'],
    embedding_bwd_runs: ['read', 'read', 'read', 'read', 'rw', 'read'],
  }),
  ops,
};
