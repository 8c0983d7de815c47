// A token dataset with a fixed train/validation split and a stateless batch sampler. A batch is a pure function
// of (tokens, split, seed, batch index, B, T): the coordinator, a browser volunteer and a Node worker that hold
// the same tokens compute the same batch with no shared state. The contract is spelled out in docs/data.md.
// Shapes: B = batch size (rows), T = sequence length (columns); idx and targets are row-major (B, T).
import { Rng } from '../rng.ts';
import { CharTokenizer } from './tokenizer.ts';

export type TokenArray = Int32Array | Uint16Array;
export type Split = 'train' | 'val';

/** the last 10% of the tokens (rounded down) are the validation split; the rest, before them, is train */
export const VAL_FRACTION = 0.1;

export interface Batch {
  B: number;
  T: number;
  /** (B, T) input token ids */
  idx: Int32Array;
  /** (B, T) next-token targets: targets[b, t] = idx[b, t + 1] for t < T − 1, and the token after the window's end */
  targets: Int32Array;
  /** (B) absolute position in the token array of each row's first input token */
  offsets: Int32Array;
}

// ---- the seed of batch (seed, split, index) -------------------------------------------------------------

const SPLIT_TAG: Record<Split, number> = { train: 1, val: 2 };

/** murmur3's 32-bit finaliser: a bijection on uint32 with full avalanche */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** folds one uint32 word into the hash state (the golden-ratio constant keeps 0 from being a fixed point) */
const absorb = (h: number, word: number): number => fmix32(((h ^ word) + 0x9e3779b9) >>> 0);

/**
 * The uint32 seed of the Rng that draws batch `index` of `split` in a run seeded with `seed`:
 * h = absorb(absorb(absorb(absorb(0, seed), splitTag), index mod 2^32), floor(index / 2^32)).
 */
export function batchSeed(seed: number, split: Split, index: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`batch index must be a non-negative safe integer, got ${index}`);
  let h = absorb(0, seed);
  h = absorb(h, SPLIT_TAG[split]);
  h = absorb(h, index >>> 0);
  h = absorb(h, Math.floor(index / 2 ** 32) >>> 0);
  return h;
}

// ---- the dataset -------------------------------------------------------------------------------------------

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

export class TokenDataset {
  readonly tokens: TokenArray;
  readonly vocabSize: number;
  /** first validation position: train = tokens[0, splitAt), val = tokens[splitAt, N) */
  readonly splitAt: number;

  /** checks every token is in [0, vocabSize) so a bad file fails here, not as a GPU out-of-range read */
  constructor(tokens: TokenArray, vocabSize: number, valFraction = VAL_FRACTION) {
    checkSize('vocabSize', vocabSize);
    if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`valFraction must be in [0, 1), got ${valFraction}`);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!(t >= 0 && t < vocabSize)) throw new Error(`token ${t} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
    this.tokens = tokens;
    this.vocabSize = vocabSize;
    this.splitAt = tokens.length - Math.floor(tokens.length * valFraction);
  }

  get length(): number {
    return this.tokens.length;
  }

  /** [start, end) of a split in the token array */
  range(split: Split): [number, number] {
    if (split === 'train') return [0, this.splitAt];
    if (split === 'val') return [this.splitAt, this.tokens.length];
    throw new Error(`unknown split ${JSON.stringify(split)} (expected "train" or "val")`);
  }

  /** a view (no copy) of a split's tokens */
  split(split: Split): TokenArray {
    const [a, b] = this.range(split);
    return this.tokens.subarray(a, b);
  }

  /** number of distinct window starts in a split for sequence length T: a window reads T + 1 tokens */
  windows(split: Split, T: number): number {
    checkSize('T', T);
    const [a, b] = this.range(split);
    const n = b - a - T;
    if (n < 1) {
      throw new Error(
        `T + 1 = ${T + 1} tokens do not fit in the ${split} split of ${b - a} tokens ` +
          `(a window holds T inputs and the target after the last); use T ≤ ${b - a - 1}`,
      );
    }
    return n;
  }

  /**
   * Batch `index` of a run seeded with `seed`: B windows whose starts are drawn uniformly, with replacement,
   * from the split's `windows(split, T)` starts by `new Rng(batchSeed(seed, split, index)).int(windows)`, row by row.
   */
  batch(split: Split, seed: number, index: number, B: number, T: number): Batch {
    checkSize('B', B);
    const W = this.windows(split, T);
    const rng = new Rng(batchSeed(seed, split, index));
    const offsets = new Int32Array(B);
    const base = this.range(split)[0];
    for (let b = 0; b < B; b++) offsets[b] = base + rng.int(W);
    return this.gather(offsets, T);
  }

  /**
   * Validation batch j of n fixed ones: the n·B windows of all n batches have starts evenly spread over the
   * split, k·(W − 1)/(n·B − 1) rounded down for k = 0..n·B − 1 (the first at the split's start, the last
   * ending at its end); batch j holds windows k = j·B .. j·B + B − 1. With n·B·T ≥ the split's length every
   * validation token is read.
   */
  evalBatch(j: number, n: number, B: number, T: number): Batch {
    checkSize('n', n);
    checkSize('B', B);
    if (!Number.isInteger(j) || j < 0 || j >= n) throw new Error(`eval batch index must be an integer in [0, ${n}), got ${j}`);
    const W = this.windows('val', T);
    const K = n * B;
    const base = this.range('val')[0];
    const offsets = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const k = j * B + b;
      offsets[b] = base + (K === 1 ? 0 : Math.floor((k * (W - 1)) / (K - 1)));
    }
    return this.gather(offsets, T);
  }

  /** the n fixed validation batches (see evalBatch) */
  evalBatches(n: number, B: number, T: number): Batch[] {
    checkSize('n', n);
    return Array.from({ length: n }, (_, j) => this.evalBatch(j, n, B, T));
  }

  /** rows of T inputs and T targets starting at each offset */
  private gather(offsets: Int32Array, T: number): Batch {
    const B = offsets.length;
    const idx = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const o = offsets[b];
      idx.set(this.tokens.subarray(o, o + T), b * T);
      targets.set(this.tokens.subarray(o + 1, o + T + 1), b * T);
    }
    return { B, T, idx, targets, offsets };
  }
}

/** tokenizer (canonical vocabulary of the text) and dataset in one call */
export function encodeCorpus(text: string, valFraction = VAL_FRACTION): { tokenizer: CharTokenizer; dataset: TokenDataset } {
  const tokenizer = CharTokenizer.fromText(text);
  const dataset = new TokenDataset(tokenizer.encode(text), tokenizer.size, valFraction);
  return { tokenizer, dataset };
}

/** entropy of the token frequencies in nats per token: the loss of the best model that ignores context */
export function unigramEntropy(tokens: ArrayLike<number>, vocabSize: number): number {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < tokens.length; i++) counts[tokens[i]]++;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / tokens.length) * Math.log(c / tokens.length);
  return h;
}
