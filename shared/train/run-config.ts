// A training run's config (isomorphic): {model, data, optim, train}, validated with zod; every problem is listed
// by its path (e.g. `train.max_steps: must be an integer >= 1, got 0`) in one Error. The model section is
// shared/models/config.ts's, the optim section shared/train/schedule.ts's; both keep their own defaults.
// vocab_size may be omitted (or 0): the caller fills it from the corpus's tokenizer (see `vocabSize` below).
// For gpt, model.block_size defaults to data.block_size, and data.block_size may not exceed it.
import { z } from 'zod';
import { parseModelConfig, type ModelConfig } from '../models/config.ts';
import { parseOptimConfig, type OptimConfig } from './schedule.ts';

export interface DataConfig {
  /** 'moby-dick' (the default corpus) or a path to a .txt file or a folder of them */
  corpus: string;
  /** B: rows per micro-batch */
  batch_size: number;
  /** T: tokens per row (the context a step trains on) */
  block_size: number;
}

export interface TrainConfig {
  /** optimizer steps in the run (a resumed run continues up to this) */
  max_steps: number;
  /** evaluate the validation loss every this many steps (and at the start and the end); 0 turns eval off */
  eval_interval: number;
  /** fixed validation batches per eval (dataset.evalBatches) */
  eval_batches: number;
  /** write a checkpoint every this many steps (and at the end); 0: only at the end */
  checkpoint_interval: number;
  /** keep the newest this many checkpoints in out_dir */
  keep_checkpoints: number;
  /** seeds the initial weights and the batch sampler (batch(train, seed, step·accum + micro)) */
  seed: number;
  /** the run's folder: checkpoints go here */
  out_dir: string;
}

/** how a swarm trains the run (the coordinator's side; a single worker ignores it) */
export interface SwarmConfig {
  /**
   * rows (samples of data.block_size tokens) per optimizer step, summed over the volunteers, as hivemind's
   * target_batch_size; a multiple of data.batch_size. 0: data.batch_size × optim.grad_accum_steps, which makes the
   * swarm's step exactly the single-worker step (same batches, same order).
   */
  target_batch_size: number;
  /** data.batch_size batches per lease: more amortises the gradient upload, fewer spreads a step over more workers */
  batches_per_lease: number;
  /** a lease not returned within this many seconds goes to another worker */
  lease_timeout_s: number;
  /** close a step after this many seconds with what has arrived, if at least min_batch_size rows; 0: wait for the whole target */
  step_timeout_s: number;
  min_batch_size: number;
  /** a gradient computed on weights this many versions behind the current ones is still applied; older ones are refused */
  max_staleness: number;
  /** the share of volunteers this run gets when several runs are active (relative to the other runs' weights) */
  weight: number;
  /**
   * how a step's gradients are combined: 'mean' (exactly the single-worker step), 'trimmed_mean' (coordinate-wise,
   * trim_fraction cut from each end) or 'centered_clip' (clip_iters rounds of clipping at clip_tau around the
   * estimate, from the coordinate-wise median). The robust ones keep each lease's gradient until the step closes
   * (memory: target_batch_size / (batch_size · batches_per_lease) gradients) and count each lease as one vote.
   */
  aggregator: 'mean' | 'trimmed_mean' | 'centered_clip';
  trim_fraction: number;
  /** 0: the median distance of the gradients to the estimate, each round */
  clip_tau: number;
  clip_iters: number;
  /** refuse a gradient whose per-batch norm is over this many times the median of recent ones; 0: off */
  norm_screen: number;
  /** server-side momentum on the aggregated gradient (before clipping and AdamW); 0: off */
  momentum: number;
  /** share of train batches also computed by a second volunteer and compared (a third breaks a tie); 0: off */
  spot_check_fraction: number;
  /** the relative L2 distance two honest results of one batch may differ by (different GPUs round differently) */
  spot_check_tolerance: number;
  /**
   * share of passed spot checks confirmed by a third copy (colluding twins that compute the same wrong gradient
   * pass a check that reaches both of them); a pair of which neither has a record is always confirmed when a
   * worker with one is around
   */
  spot_check_confirm: number;
  /**
   * a volunteer identity new to the run is on probation: while it has passed fewer than this many spot checks,
   * every train lease it gets is spot-checked (identities are free to mint, so a banned attacker's next one starts
   * here). Only in runs that spot-check (spot_check_fraction > 0); 0: no probation
   */
  probation: number;
  /**
   * probation for a new identity from a network that already produced a banned one: longer, not a ban (NAT puts
   * many volunteers behind one address)
   */
  probation_after_ban: number;
  /** strikes (non-finite, outlier, wrong shape, a failed spot check) before a volunteer is banned from the run */
  ban_after: number;
}

export interface RunConfig {
  model: ModelConfig;
  data: DataConfig;
  optim: OptimConfig;
  train: TrainConfig;
  swarm: SwarmConfig;
}

export const DATA_DEFAULTS: DataConfig = { corpus: 'moby-dick', batch_size: 16, block_size: 64 };
export const TRAIN_DEFAULTS: TrainConfig = {
  max_steps: 1000,
  eval_interval: 100,
  eval_batches: 8,
  checkpoint_interval: 250,
  keep_checkpoints: 3,
  seed: 1,
  out_dir: 'runs/default',
};

export const SWARM_DEFAULTS: SwarmConfig = {
  target_batch_size: 0,
  batches_per_lease: 1,
  lease_timeout_s: 60,
  step_timeout_s: 0,
  min_batch_size: 1,
  max_staleness: 1,
  weight: 1,
  aggregator: 'mean',
  trim_fraction: 0.2,
  clip_tau: 0,
  clip_iters: 3,
  norm_screen: 10,
  momentum: 0,
  spot_check_fraction: 0,
  spot_check_tolerance: 1e-3,
  spot_check_confirm: 0.25,
  probation: 3,
  probation_after_ban: 12,
  ban_after: 5,
};

const posInt = (d: number) => z.number({ error: 'must be an integer >= 1' }).int({ error: 'must be an integer >= 1' }).min(1, { error: 'must be an integer >= 1' }).default(d);
const natInt = (d: number) => z.number({ error: 'must be an integer >= 0' }).int({ error: 'must be an integer >= 0' }).min(0, { error: 'must be an integer >= 0' }).default(d);

const dataSchema = z.strictObject({
  corpus: z.string({ error: "must be 'moby-dick' or a path to a .txt file or folder" }).min(1, { error: "must be 'moby-dick' or a path" }).default(DATA_DEFAULTS.corpus),
  batch_size: posInt(DATA_DEFAULTS.batch_size),
  block_size: posInt(DATA_DEFAULTS.block_size),
});

const trainSchema = z.strictObject({
  max_steps: posInt(TRAIN_DEFAULTS.max_steps),
  eval_interval: natInt(TRAIN_DEFAULTS.eval_interval),
  eval_batches: posInt(TRAIN_DEFAULTS.eval_batches),
  checkpoint_interval: natInt(TRAIN_DEFAULTS.checkpoint_interval),
  keep_checkpoints: posInt(TRAIN_DEFAULTS.keep_checkpoints),
  seed: z.number({ error: 'must be an integer in [0, 2^32)' }).int({ error: 'must be an integer in [0, 2^32)' }).min(0, { error: 'must be an integer in [0, 2^32)' }).max(0xffffffff, { error: 'must be an integer in [0, 2^32)' }).default(TRAIN_DEFAULTS.seed),
  out_dir: z.string({ error: 'must be a folder path' }).min(1, { error: 'must be a folder path' }).default(TRAIN_DEFAULTS.out_dir),
});

const swarmSchema = z.strictObject({
  target_batch_size: natInt(SWARM_DEFAULTS.target_batch_size),
  batches_per_lease: posInt(SWARM_DEFAULTS.batches_per_lease),
  lease_timeout_s: z.number({ error: 'must be a number > 0' }).positive({ error: 'must be a number > 0' }).default(SWARM_DEFAULTS.lease_timeout_s),
  step_timeout_s: z.number({ error: 'must be a number >= 0' }).min(0, { error: 'must be a number >= 0' }).default(SWARM_DEFAULTS.step_timeout_s),
  min_batch_size: posInt(SWARM_DEFAULTS.min_batch_size),
  max_staleness: natInt(SWARM_DEFAULTS.max_staleness),
  weight: z.number({ error: 'must be a number > 0' }).positive({ error: 'must be a number > 0' }).default(SWARM_DEFAULTS.weight),
  aggregator: z.enum(['mean', 'trimmed_mean', 'centered_clip'], { error: "must be 'mean', 'trimmed_mean' or 'centered_clip'" }).default(SWARM_DEFAULTS.aggregator),
  trim_fraction: z.number({ error: 'must be a number in [0, 0.5)' }).min(0, { error: 'must be a number in [0, 0.5)' }).lt(0.5, { error: 'must be a number in [0, 0.5)' }).default(SWARM_DEFAULTS.trim_fraction),
  clip_tau: z.number({ error: 'must be a number >= 0' }).min(0, { error: 'must be a number >= 0' }).default(SWARM_DEFAULTS.clip_tau),
  clip_iters: posInt(SWARM_DEFAULTS.clip_iters),
  norm_screen: z.number({ error: 'must be 0 (off) or a number > 1' }).refine((v) => v === 0 || v > 1, { error: 'must be 0 (off) or a number > 1' }).default(SWARM_DEFAULTS.norm_screen),
  momentum: z.number({ error: 'must be a number in [0, 1)' }).min(0, { error: 'must be a number in [0, 1)' }).lt(1, { error: 'must be a number in [0, 1)' }).default(SWARM_DEFAULTS.momentum),
  spot_check_fraction: z.number({ error: 'must be a number in [0, 1]' }).min(0, { error: 'must be a number in [0, 1]' }).max(1, { error: 'must be a number in [0, 1]' }).default(SWARM_DEFAULTS.spot_check_fraction),
  spot_check_tolerance: z.number({ error: 'must be a number > 0' }).positive({ error: 'must be a number > 0' }).default(SWARM_DEFAULTS.spot_check_tolerance),
  spot_check_confirm: z.number({ error: 'must be a number in [0, 1]' }).min(0, { error: 'must be a number in [0, 1]' }).max(1, { error: 'must be a number in [0, 1]' }).default(SWARM_DEFAULTS.spot_check_confirm),
  probation: natInt(SWARM_DEFAULTS.probation),
  probation_after_ban: natInt(SWARM_DEFAULTS.probation_after_ban),
  ban_after: posInt(SWARM_DEFAULTS.ban_after),
});

const SECTIONS = ['model', 'data', 'optim', 'train', 'swarm'];
const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const at = (obj: unknown, path: readonly PropertyKey[]) => path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k], obj);

function zodProblems(section: string, r: z.ZodSafeParseResult<unknown>, raw: unknown, keys: string[], out: string[]): void {
  if (r.success) return;
  for (const iss of r.error.issues) {
    if (iss.code === 'unrecognized_keys') for (const k of iss.keys) out.push(`${section}.${k}: unknown key (${section} has ${keys.join(', ')})`);
    else out.push(`${[section, ...iss.path].join('.')}: ${iss.message}, got ${show(at(raw, iss.path))}`);
  }
}

/** "model config: a: x; b: y" → ["model.a: x", "model.b: y"] (the section parsers prefix their own name) */
function sectionProblems(section: string, e: unknown, out: string[]): void {
  const msg = (e as Error).message.replace(/^[a-z ]*config: /, '');
  for (const part of msg.split('; ')) out.push(/^[a-z_]+[:.]/.test(part) ? `${section}.${part}` : `${section}: ${part}`);
}

export interface ParseRunOptions {
  /**
   * the corpus's vocabulary size, given the parsed data section: fills model.vocab_size when it is omitted or 0
   * (without it such a config gets the model family's default)
   */
  vocabSize?: (data: DataConfig) => number;
}

/** a typed RunConfig with defaults filled in; throws one Error that lists every problem by path */
export function parseRunConfig(json: unknown, opts: ParseRunOptions = {}): RunConfig {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (e) {
      throw new Error(`run config: not JSON (${(e as Error).message})`);
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`run config: must be a JSON object {model, data, optim, train}, got ${show(json)}`);
  const raw = json as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(raw)) if (!SECTIONS.includes(k)) problems.push(`${k}: unknown key (a run config has ${SECTIONS.join(', ')})`);
  const obj = (k: string): Record<string, unknown> => {
    const v = raw[k] ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      problems.push(`${k}: must be an object, got ${show(v)}`);
      return {};
    }
    return v as Record<string, unknown>;
  };
  const [rawModel, rawData, rawOptim, rawTrain, rawSwarm] = [obj('model'), obj('data'), obj('optim'), obj('train'), obj('swarm')];

  const d = dataSchema.safeParse(rawData);
  zodProblems('data', d, rawData, Object.keys(DATA_DEFAULTS), problems);
  const t = trainSchema.safeParse(rawTrain);
  zodProblems('train', t, rawTrain, Object.keys(TRAIN_DEFAULTS), problems);
  const sw = swarmSchema.safeParse(rawSwarm);
  zodProblems('swarm', sw, rawSwarm, Object.keys(SWARM_DEFAULTS), problems);
  let optim: OptimConfig | undefined;
  try {
    optim = parseOptimConfig(rawOptim);
  } catch (e) {
    sectionProblems('optim', e, problems);
  }

  const modelIn: Record<string, unknown> = { ...rawModel };
  if (d.success) {
    if ((modelIn.vocab_size === undefined || modelIn.vocab_size === 0) && opts.vocabSize) {
      try {
        modelIn.vocab_size = opts.vocabSize(d.data);
      } catch (e) {
        problems.push(`data.corpus: ${(e as Error).message}`);
        delete modelIn.vocab_size;
      }
    }
    if (modelIn.model === 'gpt' && modelIn.block_size === undefined) modelIn.block_size = d.data.block_size;
  }
  if (modelIn.vocab_size === 0) delete modelIn.vocab_size;
  let model: ModelConfig | undefined;
  try {
    model = parseModelConfig(modelIn);
  } catch (e) {
    sectionProblems('model', e, problems);
  }
  if (model?.model === 'gpt' && d.success && d.data.block_size > model.block_size) {
    problems.push(`data.block_size: ${d.data.block_size} exceeds model.block_size ${model.block_size} (the gpt position table holds block_size positions)`);
  }
  let swarm: SwarmConfig | undefined;
  if (sw.success && d.success && optim) {
    swarm = { ...sw.data };
    if (swarm.target_batch_size === 0) swarm.target_batch_size = d.data.batch_size * optim.grad_accum_steps;
    if (swarm.target_batch_size % d.data.batch_size !== 0) {
      problems.push(`swarm.target_batch_size: ${swarm.target_batch_size} must be a multiple of data.batch_size ${d.data.batch_size} (a step is a whole number of batches)`);
    }
    if (swarm.min_batch_size > swarm.target_batch_size) problems.push(`swarm.min_batch_size: ${swarm.min_batch_size} exceeds swarm.target_batch_size ${swarm.target_batch_size}`);
  }
  if (problems.length || !model || !optim || !d.success || !t.success || !swarm) throw new Error(`run config: ${problems.join('; ')}`);
  return { model, data: d.data, optim, train: t.data, swarm };
}
