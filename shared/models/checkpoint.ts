// Checkpoints as bytes (isomorphic): a safetensors file whose tensors are the model's PyTorch state_dict
// (layout.ts names and shapes, gpt's tied lm_head.weight included) and whose `__metadata__` says how to rebuild
// and resume it; the AdamW moments go in a sibling file. Both round-trip bit for bit. Files on disk:
// coordinator/checkpoint.ts.
//
// In PyTorch: `sd = safetensors.torch.load_file('ckpt-100.safetensors'); GPT(GPTConfig(**cfg)).load_state_dict(sd)`
// with `cfg = json.loads(safe_open(...).metadata()['config'])` less its `model` key.
import pkg from '../../package.json' with { type: 'json' };
import { CharTokenizer } from '../data/tokenizer.ts';
import { checkHyper } from '../reference/adamw.ts';
import { readSafetensors, writeSafetensors } from '../safetensors.ts';
import { shapeStr, type HostTensor } from '../tensor.ts';
import { configJson, parseModelConfig, type ModelConfig } from './config.ts';
import { paramLayout } from './layout.ts';

/** written into every checkpoint's metadata, so a file says which code produced it */
export const GRADSWARM_VERSION: string = pkg.version;

/** torch.optim.AdamW's settings, plus whatever schedule settings the trainer keeps (warmup, decay, clipping, ...) */
export interface OptimizerSettings {
  name: 'adamw';
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  /** schedule settings: any JSON values; numbers round-trip exactly (JSON keeps every double, except -0 → 0) */
  [setting: string]: unknown;
}

export interface Checkpoint {
  config: ModelConfig;
  /** the flat parameters in paramLayout(config) */
  params: Float32Array;
  tokenizer: CharTokenizer;
  /** optimizer steps taken so far: the step to resume from */
  step: number;
  optimizer: OptimizerSettings;
  /** on decode: the gradswarm version that wrote the file, when it says (encode always writes the current one) */
  gradswarm_version?: string;
}

/** AdamW's moments after `step` steps (torch's state['step'], exp_avg, exp_avg_sq), flat in the parameter layout */
export interface OptimizerState {
  step: number;
  exp_avg: Float32Array;
  exp_avg_sq: Float32Array;
}

/** the metadata keys decodeCheckpoint needs; `format` and `gradswarm_version` are written too */
const REQUIRED = ['config', 'tokenizer', 'step', 'optimizer'] as const;

export function encodeCheckpoint(c: Omit<Checkpoint, 'gradswarm_version'>): Uint8Array {
  const layout = paramLayout(c.config);
  checkStep(c.step, 'checkpoint');
  checkOptimizer(c.optimizer, 'checkpoint');
  checkVocab(c.tokenizer, c.config);
  return writeSafetensors(layout.toStateDict(c.params), {
    config: configJson(c.config),
    tokenizer: JSON.stringify(c.tokenizer.toJSON()),
    step: String(c.step),
    optimizer: JSON.stringify(c.optimizer),
    format: 'pt',
    gradswarm_version: GRADSWARM_VERSION,
  });
}

/** a checkpoint from its bytes; throws one error that says which part is wrong */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  const { tensors, metadata } = readSafetensors(bytes);
  const missing = REQUIRED.filter((k) => typeof metadata[k] !== 'string');
  if (missing.length) {
    throw new Error(
      `checkpoint: __metadata__ has no ${missing.map((k) => `'${k}'`).join(', ')} (a gradswarm checkpoint's metadata holds ` +
        `${REQUIRED.join(', ')}; it has ${Object.keys(metadata).join(', ') || 'none'})`,
    );
  }
  if (metadata.format !== undefined && metadata.format !== 'pt') {
    throw new Error(`checkpoint: __metadata__.format is ${JSON.stringify(metadata.format)}, expected "pt" (PyTorch tensors)`);
  }
  let config: ModelConfig;
  try {
    config = parseModelConfig(metadata.config);
  } catch (e) {
    throw new Error(`checkpoint: config invalid: ${(e as Error).message}`);
  }
  let tokenizer: CharTokenizer;
  try {
    tokenizer = CharTokenizer.fromJSON(metadata.tokenizer);
  } catch (e) {
    throw new Error(`checkpoint: tokenizer invalid: ${(e as Error).message}`);
  }
  checkVocab(tokenizer, config);
  const step = parseStep(metadata.step, 'checkpoint');
  let optimizer: OptimizerSettings;
  try {
    optimizer = JSON.parse(metadata.optimizer) as OptimizerSettings;
  } catch (e) {
    throw new Error(`checkpoint: optimizer is not JSON (${(e as Error).message})`);
  }
  checkOptimizer(optimizer, 'checkpoint');
  let params: Float32Array;
  try {
    params = paramLayout(config).fromStateDict(tensors);
  } catch (e) {
    throw new Error(`checkpoint: ${(e as Error).message}`);
  }
  const out: Checkpoint = { config, params, tokenizer, step, optimizer };
  if (metadata.gradswarm_version !== undefined) out.gradswarm_version = metadata.gradswarm_version;
  return out;
}

/** tensors `exp_avg.<name>` and `exp_avg_sq.<name>` for each parameter of the layout (gpt's tied lm_head has none) */
export function encodeOptimizerState(s: OptimizerState, config: ModelConfig): Uint8Array {
  const layout = paramLayout(config);
  checkStep(s.step, 'optimizer state');
  const tensors: Record<string, HostTensor> = {};
  for (const [moment, flat] of [['exp_avg', s.exp_avg], ['exp_avg_sq', s.exp_avg_sq]] as const) {
    if (flat.length !== layout.size) {
      throw new Error(`optimizer state: ${moment} has ${flat.length} elements but the ${config.model} layout holds ${layout.size}`);
    }
    for (const p of layout.params) tensors[`${moment}.${p.name}`] = { shape: [...p.shape], data: flat.slice(p.offset, p.offset + p.numel) };
  }
  return writeSafetensors(tensors, { step: String(s.step), format: 'pt', gradswarm_version: GRADSWARM_VERSION });
}

/** the moments for `config`'s layout; throws one error listing every missing, unexpected or misshapen tensor */
export function decodeOptimizerState(bytes: Uint8Array, config: ModelConfig): OptimizerState {
  const { tensors, metadata } = readSafetensors(bytes);
  if (typeof metadata.step !== 'string') throw new Error(`optimizer state: __metadata__ has no 'step'`);
  const step = parseStep(metadata.step, 'optimizer state');
  const layout = paramLayout(config);
  const moments = { exp_avg: new Float32Array(layout.size), exp_avg_sq: new Float32Array(layout.size) };
  const problems: string[] = [];
  const expected = new Set<string>();
  for (const moment of ['exp_avg', 'exp_avg_sq'] as const) {
    for (const p of layout.params) {
      const name = `${moment}.${p.name}`;
      expected.add(name);
      const t = tensors[name];
      if (!t) problems.push(`missing tensor '${name}' ${shapeStr(p.shape)}`);
      else if (shapeStr(t.shape) !== shapeStr(p.shape)) problems.push(`'${name}' has shape ${shapeStr(t.shape)} but this ${config.model} config needs ${shapeStr(p.shape)}`);
      else if (t.data instanceof Int32Array) problems.push(`'${name}' holds integers: a moment must be a float tensor`);
      else moments[moment].set(t.data, p.offset);
    }
  }
  for (const name of Object.keys(tensors)) if (!expected.has(name)) problems.push(`unexpected tensor '${name}'`);
  if (problems.length) throw new Error(`optimizer state for ${config.model}: ${problems.join('; ')}`);
  return { step, ...moments };
}

function checkStep(step: number, what: string): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${what}: step must be an integer ≥ 0, got ${step}`);
}

function parseStep(s: string, what: string): number {
  const step = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(step)) throw new Error(`${what}: step must be an integer ≥ 0, got ${JSON.stringify(s)}`);
  return step;
}

function checkOptimizer(o: unknown, what: string): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${what}: optimizer must be an object {name: 'adamw', lr, betas, eps, weight_decay, ...}`);
  const r = o as Record<string, unknown>;
  if (r.name !== 'adamw') throw new Error(`${what}: optimizer name must be "adamw", got ${JSON.stringify(r.name)}`);
  const betas = r.betas;
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
    throw new Error(`${what}: optimizer betas must be a pair of numbers [beta1, beta2], got ${JSON.stringify(betas)}`);
  }
  for (const k of ['lr', 'eps', 'weight_decay']) {
    if (typeof r[k] !== 'number') throw new Error(`${what}: optimizer ${k} must be a number, got ${JSON.stringify(r[k])}`);
  }
  try {
    checkHyper({ lr: r.lr as number, beta1: betas[0], beta2: betas[1], eps: r.eps as number, weightDecay: r.weight_decay as number, step: 1 });
  } catch (e) {
    throw new Error(`${what}: optimizer: ${(e as Error).message}`);
  }
}

/** token ids must index the embedding: the vocabulary may be smaller than vocab_size (padded), never larger */
function checkVocab(t: CharTokenizer, c: ModelConfig): void {
  if (t.size > c.vocab_size) throw new Error(`checkpoint: the tokenizer has ${t.size} symbols but config vocab_size is ${c.vocab_size}`);
}
