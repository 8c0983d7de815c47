// `gradswarm grad`, `gradswarm eval` and `gradswarm sample`: one checkpoint, one model on this machine's GPU
// (Node runtime, through Dawn), no training.
//
// grad: loss and gradients of one batch. The batch file holds `idx` and `targets`, integer (I32 or I64) tensors
// of shape (B, T) (targets −1 are ignored, as F.cross_entropy's ignore_index). The gradient file holds one F32
// tensor per state_dict entry of the checkpoint, under the same PyTorch name and shape, and `__metadata__`
// {loss, model, config, B, T, format: 'pt', gradswarm_version}. gpt ties lm_head.weight to
// transformer.wte.weight: both entries carry the same tensor, the full gradient of the one shared parameter
// (token-embedding and LM-head contributions summed), as PyTorch's `lm_head.weight.grad` is
// `transformer.wte.weight.grad`. Do not add the two.
// eval: mean of the per-batch mean losses (nats/char) over the data layer's fixed validation batches
// (TokenDataset.evalBatches) of a corpus tokenized with the checkpoint's own vocabulary.
// sample: prompt + `--tokens` characters drawn on the host from the last position's logits with a seeded Rng.
import { readFileSync, writeFileSync } from 'node:fs';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GptModel } from '../../client/models/gpt.ts';
import { RecurrentModel } from '../../client/models/recurrent.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { TokenDataset } from '../../shared/data/dataset.ts';
import { decodeCheckpoint, GRADSWARM_VERSION, type Checkpoint } from '../../shared/models/checkpoint.ts';
import { configJson, isGpt } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { batchDims } from '../../shared/models/reference/index.ts';
import { Rng } from '../../shared/rng.ts';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';
import { shapeStr } from '../../shared/tensor.ts';
import { loadCorpus, MOBY_DICK } from '../data/corpus.ts';

type Model = GptModel | RecurrentModel;

function checkRuntime(runtime: string): void {
  if (runtime !== 'node') throw new Error(`--runtime ${runtime}: this command runs on the node runtime only (the default)`);
}

function loadCheckpointFile(path: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`--checkpoint ${path}: ${(e as Error).message}`);
  }
  try {
    return decodeCheckpoint(bytes);
  } catch (e) {
    throw new Error(`--checkpoint ${path}: ${(e as Error).message}`);
  }
}

/** opens the GPU, builds the checkpoint's model with its weights, runs f, and frees everything */
async function withModel<R>(ck: Checkpoint, f: (m: Model, g: Gpu) => Promise<R>): Promise<R> {
  const g = await openNodeGpu();
  const model = isGpt(ck.config) ? new GptModel(g, ck.config) : new RecurrentModel(g, ck.config);
  try {
    model.setParams(ck.params);
    return await f(model, g);
  } finally {
    model.release();
    g.destroy();
  }
}

const int = (name: string, v: string | number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${v}`);
  return n;
};

// ---- grad -----------------------------------------------------------------------------------------------------

export interface GradOptions {
  checkpoint: string;
  batch: string;
  out: string;
  runtime: string;
}

export async function gradCommand(o: GradOptions): Promise<void> {
  checkRuntime(o.runtime);
  const ck = loadCheckpointFile(o.checkpoint);
  let file;
  try {
    file = readSafetensors(new Uint8Array(readFileSync(o.batch)));
  } catch (e) {
    throw new Error(`--batch ${o.batch}: ${(e as Error).message}`);
  }
  const missing = ['idx', 'targets'].filter((n) => !file.tensors[n]);
  if (missing.length) {
    throw new Error(
      `--batch ${o.batch}: missing tensor ${missing.map((n) => `'${n}'`).join(' and ')} (a batch file holds idx and targets, ` +
        `integer tensors of shape (B, T); it has ${Object.keys(file.tensors).map((n) => `'${n}' ${shapeStr(file.tensors[n].shape)}`).join(', ') || 'no tensors'})`,
    );
  }
  const { idx, targets } = file.tensors;
  let B: number, T: number;
  try {
    ({ B, T } = batchDims(ck.config, idx, targets)); // int, (B, T), ids in [0, V), targets in [0, V) or -1, T ≤ block_size
  } catch (e) {
    throw new Error(`--batch ${o.batch}: ${(e as Error).message}`);
  }
  const { loss, grads } = await withModel(ck, (m) => m.lossAndGrads(idx.data as Int32Array, targets.data as Int32Array, B, T));
  const tensors = paramLayout(ck.config).toStateDict(grads);
  writeFileSync(
    o.out,
    writeSafetensors(tensors, { loss: String(loss), model: ck.config.model, config: configJson(ck.config), B: String(B), T: String(T), format: 'pt', gradswarm_version: GRADSWARM_VERSION }),
  );
  console.log(`${ck.config.model} (B, T) = (${B}, ${T}): loss ${loss}; wrote ${Object.keys(tensors).length} gradient tensors to ${o.out}`);
}

// ---- eval -----------------------------------------------------------------------------------------------------

export interface EvalOptions {
  checkpoint: string;
  batches: string;
  batchSize: string;
  blockSize?: string;
  corpus: string;
  runtime: string;
}

/** the mean validation loss of the fixed eval batches; exported for tests */
export async function evalCheckpoint(ck: Checkpoint, text: string, n: number, B: number, T: number): Promise<{ loss: number; losses: number[] }> {
  let tokens: Int32Array;
  try {
    tokens = ck.tokenizer.encode(text);
  } catch (e) {
    throw new Error(`the corpus does not fit the checkpoint's vocabulary: ${(e as Error).message}`);
  }
  const dataset = new TokenDataset(tokens, ck.config.vocab_size);
  const batches = dataset.evalBatches(n, B, T);
  return withModel(ck, async (m) => {
    const losses: number[] = [];
    for (const b of batches) losses.push(await m.loss(b.idx, b.targets, b.B, b.T));
    return { loss: losses.reduce((a, b) => a + b, 0) / losses.length, losses };
  });
}

export async function evalCommand(o: EvalOptions): Promise<void> {
  checkRuntime(o.runtime);
  const ck = loadCheckpointFile(o.checkpoint);
  const n = int('--batches', o.batches, 1);
  const B = int('--batch-size', o.batchSize, 1);
  const cap = isGpt(ck.config) ? ck.config.block_size : Number.MAX_SAFE_INTEGER;
  const T = o.blockSize === undefined ? Math.min(64, cap) : int('--block-size', o.blockSize, 1, cap);
  const corpus = loadCorpus(o.corpus);
  const { loss } = await evalCheckpoint(ck, corpus.text, n, B, T);
  console.log(`val loss ${loss.toFixed(6)} nats/char (${ck.config.model}, step ${ck.step}; ${n} fixed validation batches of (B, T) = (${B}, ${T}) from ${corpus.name})`);
}

// ---- sample ---------------------------------------------------------------------------------------------------

export interface SampleOptions {
  checkpoint: string;
  prompt: string;
  tokens: string;
  temperature: string;
  seed?: string;
  topK?: string;
  runtime: string;
}

/** the next id from one row of logits (only the tokenizer's first `size` ids are candidates): greedy at temperature 0 */
export function pickToken(logits: Float32Array, size: number, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < size; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  let cand = Array.from({ length: size }, (_, i) => i);
  if (topK > 0 && topK < size) cand = cand.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
  const w = cand.map((i) => Math.exp((logits[i] - logits[best]) / temperature));
  let r = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < cand.length; j++) {
    r -= w[j];
    if (r < 0) return cand[j];
  }
  return cand[cand.length - 1];
}

/** prompt + generated text; the gpt crops its context to block_size, the recurrent models rerun the whole sequence */
export async function sampleText(ck: Checkpoint, prompt: string, tokens: number, temperature: number, seed: number, topK = 0): Promise<string> {
  if (prompt.length === 0) throw new Error('--prompt must not be empty (the model needs at least one character to start from)');
  let ids: number[];
  try {
    ids = [...ck.tokenizer.encode(prompt)];
  } catch (e) {
    throw new Error(`--prompt: ${(e as Error).message}`);
  }
  const rng = new Rng(seed);
  const window = isGpt(ck.config) ? ck.config.block_size : Number.MAX_SAFE_INTEGER;
  return withModel(ck, async (m) => {
    for (let i = 0; i < tokens; i++) {
      const ctx = Int32Array.from(ids.slice(-window));
      const logits = await m.logits(ctx, 1, ctx.length, { last: true });
      ids.push(pickToken(logits, ck.tokenizer.size, temperature, topK, rng));
    }
    return ck.tokenizer.decode(ids);
  });
}

export async function sampleCommand(o: SampleOptions): Promise<void> {
  checkRuntime(o.runtime);
  const ck = loadCheckpointFile(o.checkpoint);
  const tokens = int('--tokens', o.tokens, 0);
  const temperature = Number(o.temperature);
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new Error(`--temperature must be a number ≥ 0 (0: greedy), got ${o.temperature}`);
  const seed = o.seed === undefined ? (Math.random() * 2 ** 32) >>> 0 : int('--seed', o.seed, 0, 0xffffffff);
  const topK = o.topK === undefined ? 0 : int('--top-k', o.topK, 1);
  if (o.seed === undefined) console.error(`(seed ${seed})`);
  process.stdout.write(`${await sampleText(ck, o.prompt, tokens, temperature, seed, topK)}\n`);
}

export { MOBY_DICK };
