// CPU reference (float64) for the adamw family: one step of torch.optim.AdamW (amsgrad=False, maximize=False)
// on flat buffers of any shape. Mirrors shaders/adamw.wgsl.
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { shapeStr, toF64 } from '../tensor.ts';

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** the step number after this update (torch's state['step'] after its increment): 1 on the first step */
  step: number;
}

/** the spec's options (lr, betas, eps, weight_decay, step) as numbers, checked as torch.optim.AdamW does */
export function adamwHyper(o: OpOptions): AdamWHyper {
  const betas = o.betas as unknown;
  if (!Array.isArray(betas) || betas.length !== 2) throw new Error(`adamw: betas must be a pair [beta1, beta2], got ${JSON.stringify(betas)}`);
  const h: AdamWHyper = {
    lr: Number(o.lr),
    beta1: Number(betas[0]),
    beta2: Number(betas[1]),
    eps: Number(o.eps),
    weightDecay: Number(o.weight_decay),
    step: Number(o.step),
  };
  checkHyper(h);
  return h;
}

export function checkHyper(h: AdamWHyper): void {
  if (!(h.lr >= 0)) throw new Error(`adamw: invalid learning rate ${h.lr} (must be >= 0)`);
  if (!(h.eps >= 0)) throw new Error(`adamw: invalid eps ${h.eps} (must be >= 0)`);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw new Error(`adamw: invalid beta1 ${h.beta1} (must be in [0, 1))`);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw new Error(`adamw: invalid beta2 ${h.beta2} (must be in [0, 1))`);
  if (!(h.weightDecay >= 0)) throw new Error(`adamw: invalid weight_decay ${h.weightDecay} (must be >= 0)`);
  if (!(Number.isInteger(h.step) && h.step >= 1)) {
    throw new Error(`adamw: step ${h.step} must be an integer >= 1 (the step number after this update; 1 on the first step)`);
  }
}

// In place, element by element, exactly torch's single-tensor AdamW:
//   param *= 1 − lr·wd;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
//   param −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
export function adamwStep(param: Float64Array, grad: Float64Array, m: Float64Array, v: Float64Array, h: AdamWHyper): void {
  const stepSize = h.lr / (1 - h.beta1 ** h.step);
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    param[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    param[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + h.eps);
  }
}

// No reduction: each output element is a handful of fp32 operations on its own inputs, each rounding by
// ≤ 2^-24 relative. exp_avg and exp_avg_sq are convex mixes (error ≲ 3 ulps of their own size); param's
// update is lr·m̂/(sqrt(v̂)+eps), ~lr in size, so its rounding is ~lr·1e-7 against params of size ~1. The
// bias corrections and step size are computed on the host in float64 and rounded to fp32 once.
const tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why: 'elementwise update, no accumulation: a few fp32 ulps per element (~1e-7), bias corrections computed in float64',
};

// dims: N elements; fresh = 1 starts from zero moments, as torch's state on the first step
const cases: OpCase[] = [
  { name: 'tiny 7 step 1', dims: { N: 7, fresh: 1 } },
  { name: 'tiny 7 step 2', dims: { N: 7 }, options: { step: 2 } },
  { name: 'odd 37x53x29 step 1000', dims: { N: 37 * 53 * 29 }, options: { step: 1000 } },
  { name: 'odd 1001 step 3 custom', dims: { N: 1001 }, options: { step: 3, lr: 3e-2, betas: [0.8, 0.95], eps: 1e-6, weight_decay: 0.1 } },
  { name: 'odd 999 step 1 no decay', dims: { N: 999, fresh: 1 }, options: { weight_decay: 0, lr: 1e-2 } },
  { name: 'large 4M step 10', dims: { N: 1 << 22 }, options: { step: 10 }, large: true },
];

const shapeOf = (c: OpCase) => (c.dims.N === 37 * 53 * 29 ? [37, 53, 29] : [c.dims.N]);

export const adamwOps: OpSpec[] = [
  {
    name: 'adamw',
    family: 'adamw',
    torch: 'torch.optim.AdamW(params, lr, betas, eps, weight_decay).step() (one step; amsgrad=False, maximize=False)',
    inputs: [
      { name: 'param', aliases: ['params', 'p'], differentiable: false },
      { name: 'grad', aliases: ['grads'], differentiable: false },
      { name: 'exp_avg', aliases: ['exp_avgs', 'm'], differentiable: false },
      { name: 'exp_avg_sq', aliases: ['exp_avg_sqs', 'v'], differentiable: false },
    ],
    outputs: ['param', 'exp_avg', 'exp_avg_sq'],
    defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, step: 1 },
    hasBackward: false,
    validate: (i: Tensors, o: OpOptions) => {
      for (const k of ['grad', 'exp_avg', 'exp_avg_sq']) {
        if (shapeStr(i[k].shape) !== shapeStr(i.param.shape)) {
          throw new Error(`adamw: ${k} has shape ${shapeStr(i[k].shape)} but param has shape ${shapeStr(i.param.shape)}`);
        }
      }
      adamwHyper(o);
    },
    cases,
    makeInputs: (rng: Rng, c: OpCase) => {
      const n = c.dims.N;
      const shape = shapeOf(c);
      const grad = rng.normals(n, 0.1);
      // moments as a run of Adam leaves them: m of the gradients' size, v about m² (never negative)
      const m = c.dims.fresh ? new Float32Array(n) : rng.normals(n, 0.1);
      const v = c.dims.fresh ? new Float32Array(n) : m.map((x) => x * x + 0.01 * rng.next() ** 2);
      return {
        param: { shape, data: rng.normals(n) },
        grad: { shape, data: grad },
        exp_avg: { shape, data: m },
        exp_avg_sq: { shape, data: v },
      };
    },
    reference: {
      forward: (i: Tensors, o: OpOptions) => {
        const [param, grad, m, v] = [i.param, i.grad, i.exp_avg, i.exp_avg_sq].map(toF64);
        adamwStep(param, grad, m, v, adamwHyper(o));
        const shape = [...i.param.shape];
        return { param: { shape, data: param }, exp_avg: { shape: [...shape], data: m }, exp_avg_sq: { shape: [...shape], data: v } };
      },
    },
    tolerance,
  },
];
