// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_(params, max_norm) computes it, on the flat
// gradient array a training step reads back (all tensors together: one norm over every element). The scale is
// not applied here: the trainer passes it to the optimizer as gradScale, which multiplies the gradient inside
// the AdamW kernel, so clipping costs no extra pass over the gradients.
import type { ParamLayout } from '../models/layout.ts';

export interface ClipResult {
  /** global L2 norm of the (mean) gradient, before clipping; what nanoGPT logs */
  norm: number;
  /** torch's clip coefficient min(1, max_norm / (norm + 1e-6)); 1 when clipping is off; NaN when !finite */
  scale: number;
  /** what to pass the optimizer as gradScale: scale / accumSteps (averages the summed micro-step gradients) */
  gradScale: number;
  /** false when the norm is NaN or ±Inf: the step must be skipped (the trainer stops and reports) */
  finite: boolean;
}

/** sqrt(Σ g²), squares accumulated in float64 (fp32 would lose ~1e-4 relative over millions of elements) */
export function gradNorm(grads: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < grads.length; i++) s += grads[i] * grads[i];
  return Math.sqrt(s);
}

/** torch's clip coefficient for a total norm: min(1, maxNorm / (norm + 1e-6)); maxNorm 0 means no clipping */
export function clipScale(norm: number, maxNorm: number): number {
  if (!Number.isFinite(norm)) return NaN;
  if (maxNorm === 0) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * Norm and clip scale of the mean gradient, given `grads` summed over `accumSteps` micro-steps (each the
 * gradient of its own mean loss). nanoGPT divides each micro-step's loss by the step count and clips the sum,
 * i.e. clips the mean: norm = ‖Σ‖ / accumSteps, and the optimizer must see Σ · scale / accumSteps.
 */
export function clipGrads(grads: Float32Array | Float64Array, maxNorm: number, accumSteps = 1): ClipResult {
  return clipByNorm(gradNorm(grads), maxNorm, accumSteps);
}

/** clipGrads, given the norm of the summed gradient (the coordinator computes it with its SIMD pass) */
export function clipByNorm(sumNorm: number, maxNorm: number, accumSteps = 1): ClipResult {
  if (!(maxNorm >= 0)) throw new Error(`grad clip: max norm ${maxNorm} must be >= 0 (0 turns clipping off)`);
  if (!(Number.isInteger(accumSteps) && accumSteps >= 1)) throw new Error(`grad clip: accumulation steps ${accumSteps} must be an integer >= 1`);
  const norm = sumNorm / accumSteps;
  const finite = Number.isFinite(norm);
  const scale = clipScale(norm, maxNorm);
  return { norm, scale, gradScale: scale / accumSteps, finite };
}

/**
 * For a non-finite gradient: a sentence naming the tensors that hold NaN or Inf (first few), for the trainer's
 * error message, e.g. "gradient is not finite in transformer.h.0.attn.c_attn.weight (3 NaN), ...".
 */
export function describeNonFinite(grads: Float32Array | Float64Array, layout: ParamLayout): string {
  const bad: string[] = [];
  for (const p of layout.params) {
    let nan = 0;
    let inf = 0;
    for (let i = p.offset; i < p.offset + p.numel; i++) {
      if (Number.isNaN(grads[i])) nan++;
      else if (!Number.isFinite(grads[i])) inf++;
    }
    if (nan || inf) bad.push(`${p.name} (${[nan && `${nan} NaN`, inf && `${inf} Inf`].filter(Boolean).join(', ')})`);
  }
  if (!bad.length) return 'gradient is finite in every tensor'; // fp32 squares summed in float64 cannot overflow
  const shown = bad.slice(0, 5).join(', ');
  return `gradient is not finite in ${shown}${bad.length > 5 ? ` and ${bad.length - 5} more tensors` : ''}`;
}
