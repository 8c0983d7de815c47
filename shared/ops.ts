// The op table's contract, shared by the CPU references (shared/reference), the GPU ops (client/ops), the
// op runner (`gradswarm op`), the kernel check, the tests and the benchmark. Names follow PyTorch.
import type { Rng } from './rng.ts';
import type { HostTensor } from './tensor.ts';

export type OpOptions = Record<string, unknown>;
export type Tensors = Record<string, HostTensor>;

export interface InputSpec {
  /** canonical name, as in the issue table and docs/kernels.md (x, a, b, bias, q, k, v, h0, weight_ih_l0, ...) */
  name: string;
  /** PyTorch's own argument names, accepted in safetensors files too (input, query, hx, h_0, ...) */
  aliases?: string[];
  int?: boolean;
  optional?: boolean;
  /** whether `--grad` returns grad_<name> for it */
  differentiable: boolean;
}

export interface OpCase {
  /** e.g. 'odd 37x53x29'; 'large' cases are marked so a quick run can leave them out */
  name: string;
  dims: Record<string, number>;
  options?: OpOptions;
  large?: boolean;
}

export interface Tolerance {
  forward: number;
  backward: number;
  /** why this bound holds for fp32 against float64 */
  why: string;
}

export interface OpSpec {
  name: string;
  /** shader family: shaders/<family>.wgsl, shared/reference/<family>.ts, client/ops/<family>.ts */
  family: string;
  /** the PyTorch expression it matches */
  torch: string;
  inputs: InputSpec[];
  /** differentiable forward outputs; `--grad` files carry grad_<output> for these */
  outputs: string[];
  /** forward outputs kept for backward but not differentiated (e.g. layer_norm's mean, rstd) */
  saved?: string[];
  defaults: OpOptions;
  /** false for update rules (adamw) */
  hasBackward: boolean;
  /** host-side checks before anything reaches the GPU (shapes, index ranges); throw with a clear message */
  validate?(inputs: Tensors, options: OpOptions): void;
  cases: OpCase[];
  makeInputs(rng: Rng, c: OpCase): Tensors;
  reference: {
    forward(inputs: Tensors, options: OpOptions): Tensors;
    /** grads for every differentiable input given grad_<output> tensors, keyed by the input's canonical name */
    backward?(inputs: Tensors, options: OpOptions, gradOutputs: Tensors): Tensors;
  };
  tolerance: Tolerance;
}

/** normwise relative error max|got - want| / max|want|: fp32 rounding error scales with the data's magnitude */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d; // NaN (e.g. a poisoned, unwritten element) fails
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** the options a caller gave, over the op's defaults, rejecting unknown keys */
export function resolveOptions(spec: OpSpec, given: OpOptions = {}): OpOptions {
  for (const k of Object.keys(given)) {
    if (!(k in spec.defaults)) {
      const known = Object.keys(spec.defaults);
      throw new Error(`${spec.name}: unknown option '${k}'${known.length ? ` (known: ${known.join(', ')})` : ' (it takes none)'}`);
    }
  }
  return { ...spec.defaults, ...given };
}

/** map aliases (PyTorch argument names) to canonical input names and check presence and dtype */
export function canonicalInputs(spec: OpSpec, given: Tensors): Tensors {
  const out: Tensors = {};
  const used = new Set<string>();
  for (const inp of spec.inputs) {
    const key = [inp.name, ...(inp.aliases ?? [])].find((n) => n in given);
    if (key === undefined) {
      if (inp.optional) continue;
      throw new Error(`${spec.name}: missing input '${inp.name}'${inp.aliases?.length ? ` (or ${inp.aliases.map((a) => `'${a}'`).join(', ')})` : ''}`);
    }
    const t = given[key];
    const isIntData = t.data instanceof Int32Array;
    if (inp.int && !isIntData) throw new Error(`${spec.name}: input '${key}' must be an integer tensor (I32 or I64)`);
    if (!inp.int && isIntData) throw new Error(`${spec.name}: input '${key}' must be a float tensor (F32)`);
    out[inp.name] = t;
    used.add(key);
  }
  return out;
}

export function randomLike(rng: Rng, t: HostTensor): HostTensor {
  return { shape: [...t.shape], data: rng.normals(t.data.length) };
}
