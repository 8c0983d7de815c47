// Optimizer settings and nanoGPT's learning-rate schedule (train.py `get_lr`): linear warmup, cosine decay
// to min_lr, then min_lr. Defaults follow nanoGPT's character-level preset (config/train_shakespeare_char.py),
// the closest match to a character-level Moby-Dick on a small machine.

export interface OptimConfig {
  /** peak learning rate, reached at the end of warmup; small character models tolerate 1e-3 (nanoGPT shakespeare_char) */
  lr: number;
  /** floor of the cosine decay; lr / 10 as Chinchilla and nanoGPT recommend */
  min_lr: number;
  /** iterations of linear warmup from ~0 to lr: Adam's second moment is a poor estimate for the first steps */
  warmup_iters: number;
  /** the iteration where the cosine reaches min_lr; set it to the run's max iterations (nanoGPT does) */
  lr_decay_iters: number;
  /** AdamW (β1, β2); β2 0.99 rather than torch's 0.999 because each step sees few tokens (nanoGPT shakespeare_char) */
  betas: [number, number];
  /** AdamW's denominator floor; torch's default */
  eps: number;
  /** decoupled weight decay on matmul weights only (never biases, norms or embeddings: layout.decay); nanoGPT's 0.1 */
  weight_decay: number;
  /** clip the global gradient norm to this (torch.nn.utils.clip_grad_norm_); 0 turns clipping off, as in nanoGPT */
  grad_clip: number;
  /** micro-steps whose gradients are summed before one optimizer step: a larger batch in the same memory */
  grad_accum_steps: number;
}

export const OPTIM_DEFAULTS: OptimConfig = {
  lr: 1e-3,
  min_lr: 1e-4,
  warmup_iters: 100,
  lr_decay_iters: 5000,
  betas: [0.9, 0.99],
  eps: 1e-8,
  weight_decay: 0.1,
  grad_clip: 1.0,
  grad_accum_steps: 1,
};

/**
 * The learning rate of iteration `it` (0-based), exactly nanoGPT's get_lr:
 *   it < warmup_iters:        lr · (it + 1) / (warmup_iters + 1)   (never 0, so the first step moves the weights)
 *   it > lr_decay_iters:      min_lr
 *   otherwise:                min_lr + ½(1 + cos(π · (it − warmup_iters) / (lr_decay_iters − warmup_iters))) · (lr − min_lr)
 * When lr_decay_iters = warmup_iters there is no cosine: min_lr from warmup_iters on.
 */
export function learningRate(it: number, c: Pick<OptimConfig, 'lr' | 'min_lr' | 'warmup_iters' | 'lr_decay_iters'>): number {
  if (!(Number.isInteger(it) && it >= 0)) throw new Error(`learning rate: iteration ${it} must be an integer >= 0`);
  if (it < c.warmup_iters) return (c.lr * (it + 1)) / (c.warmup_iters + 1);
  if (it >= c.lr_decay_iters) return c.min_lr; // at it = lr_decay_iters the cosine is at min_lr too
  const ratio = (it - c.warmup_iters) / (c.lr_decay_iters - c.warmup_iters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio)); // 1 → 0
  return c.min_lr + coeff * (c.lr - c.min_lr);
}

const KEYS = Object.keys(OPTIM_DEFAULTS) as (keyof OptimConfig)[];

/**
 * A typed OptimConfig with defaults filled in, from a JSON object (e.g. a preset's `optim` section). Throws one
 * Error listing every problem by key: unknown keys, wrong types, out-of-range values, inconsistent pairs.
 */
export function parseOptimConfig(json: unknown): OptimConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`optimizer config: must be a JSON object, got ${JSON.stringify(json)}`);
  const raw = json as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(raw)) if (!(KEYS as string[]).includes(k)) problems.push(`${k}: unknown key (an optimizer config has ${KEYS.join(', ')})`);
  const c = { ...OPTIM_DEFAULTS, ...raw } as Record<string, unknown>;
  const num = (k: string, ok: (x: number) => boolean, what: string) => {
    const x = c[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) problems.push(`${k}: must be ${what}, got ${JSON.stringify(x)}`);
  };
  const int = (x: number) => Number.isInteger(x);
  num('lr', (x) => x > 0, 'a number > 0');
  num('min_lr', (x) => x >= 0, 'a number >= 0');
  num('warmup_iters', (x) => int(x) && x >= 0, 'an integer >= 0');
  num('lr_decay_iters', (x) => int(x) && x >= 0, 'an integer >= 0');
  num('eps', (x) => x >= 0, 'a number >= 0');
  num('weight_decay', (x) => x >= 0, 'a number >= 0');
  num('grad_clip', (x) => x >= 0, 'a number >= 0 (0 turns clipping off)');
  num('grad_accum_steps', (x) => int(x) && x >= 1, 'an integer >= 1');
  const b = c.betas;
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) {
    problems.push(`betas: must be a pair [beta1, beta2], each in [0, 1), got ${JSON.stringify(b)}`);
  }
  const [lr, minLr, w, d] = [c.lr, c.min_lr, c.warmup_iters, c.lr_decay_iters] as number[];
  if (typeof lr === 'number' && typeof minLr === 'number' && minLr > lr) problems.push(`min_lr: ${minLr} exceeds lr ${lr} (the schedule decays from lr down to min_lr)`);
  if (typeof w === 'number' && typeof d === 'number' && d < w) problems.push(`lr_decay_iters: ${d} is before warmup_iters ${w} (the cosine runs from the end of warmup to lr_decay_iters)`);
  if (problems.length) throw new Error(`optimizer config: ${problems.join('; ')}`);
  const out = c as unknown as OptimConfig;
  return { ...out, betas: [out.betas[0], out.betas[1]] };
}
