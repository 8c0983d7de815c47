// Runs one op of the table on the GPU from host tensors, as the op runner, the kernel check, the tests and
// the benchmark do; and compares it with the float64 CPU reference.
import { canonicalInputs, randomLike, relError, resolveOptions, type OpOptions, type OpSpec, type Tensors } from '../shared/ops.ts';
import { SPECS } from '../shared/reference/index.ts';
import { Rng } from '../shared/rng.ts';
import { shapeStr } from '../shared/tensor.ts';
import { GPU_OPS } from './ops/index.ts';
import type { GpuTensors } from './ops/op.ts';
import type { Gpu } from './runtime/gpu.ts';

export function spec(name: string): OpSpec {
  const s = SPECS.find((o) => o.name === name);
  if (!s) throw new Error(`unknown op '${name}' (known: ${SPECS.map((o) => o.name).join(', ')})`);
  return s;
}

/**
 * Forward (and with `grad`, backward) of op `name` on the GPU. `given` holds inputs by canonical or PyTorch
 * name and, for `grad`, grad_<output> tensors. Returns the outputs and grad_<input> for differentiable inputs.
 */
export async function runOp(g: Gpu, name: string, given: Tensors, options: OpOptions = {}, grad = false): Promise<Tensors> {
  const s = spec(name);
  const op = GPU_OPS.get(name);
  if (!op) throw new Error(`op '${name}' has no GPU implementation`);
  const opts = resolveOptions(s, options);
  checkTensorNames(s, given);
  const inputs = canonicalInputs(s, given);
  s.validate?.(inputs, opts);
  const aliasOf = (canon: string) => [canon, ...(s.inputs.find((i) => i.name === canon)?.aliases ?? [])].find((n) => n in given) ?? canon;
  const gIn: GpuTensors = {};
  const owned: GpuTensors[] = [gIn];
  try {
    for (const [k, t] of Object.entries(inputs)) gIn[k] = g.upload(t, k);
    const outs = op.forward(g, gIn, opts);
    owned.push(outs);
    const result: Tensors = {};
    for (const k of [...s.outputs, ...(s.saved ?? [])]) if (outs[k]) result[k] = await g.readHost(outs[k]);
    if (grad) {
      if (!s.hasBackward || !op.backward) throw new Error(`${name} has no backward (${s.torch} is an update rule)`);
      const gOut: GpuTensors = {};
      owned.push(gOut);
      const present = s.outputs.filter((k) => given[`grad_${k}`]);
      if (!present.length) {
        throw new Error(`${name} --grad: the input file needs grad_<output> for at least one of ${s.outputs.map((k) => `'grad_${k}'`).join(', ')}`);
      }
      for (const k of s.outputs) {
        if (!outs[k]) continue;
        const gt = given[`grad_${k}`];
        if (!gt) {
          gOut[k] = g.zeros(outs[k].shape); // as torch.autograd.grad with that output left out
          continue;
        }
        if (gt.data instanceof Int32Array) throw new Error(`${name} --grad: 'grad_${k}' must be a float tensor (F32)`);
        if (shapeStr(gt.shape) !== shapeStr(outs[k].shape) && !(gt.data.length === 1 && outs[k].shape.length === 0)) {
          throw new Error(`${name} --grad: 'grad_${k}' has shape ${shapeStr(gt.shape)} but output '${k}' is ${shapeStr(outs[k].shape)}`);
        }
        gOut[k] = g.upload({ shape: outs[k].shape, data: gt.data }, `grad_${k}`);
      }
      const grads = op.backward(g, gIn, opts, outs, gOut);
      owned.push(grads);
      for (const inp of s.inputs) {
        if (inp.differentiable && grads[inp.name]) result[`grad_${aliasOf(inp.name)}`] = await g.readHost(grads[inp.name]);
      }
    }
    return result;
  } finally {
    // once per buffer: ops hand back views ({ ...t, shape }) and in-place results that share a buffer, and a
    // buffer released twice would later be handed out to two live tensors at once
    const byBuffer = new Map(owned.flatMap((set) => Object.values(set).filter(Boolean)).map((t) => [t.buffer, t] as const));
    g.release(...byBuffer.values());
  }
}

/**
 * Every tensor in a file must be an input (by canonical name or one alias, not two) or, for an op with a
 * backward, grad_<output>: a misspelt name would otherwise be ignored, and an optional input (bias, h0)
 * or an upstream grad silently taken as absent or zero.
 */
function checkTensorNames(s: OpSpec, given: Tensors): void {
  const known = new Set(s.hasBackward ? s.outputs.map((k) => `grad_${k}`) : []);
  for (const inp of s.inputs) {
    const names = [inp.name, ...(inp.aliases ?? [])];
    const present = names.filter((n) => n in given);
    if (present.length > 1) throw new Error(`${s.name}: input '${inp.name}' is given twice, as ${present.map((n) => `'${n}'`).join(' and ')}`);
    for (const n of names) known.add(n);
  }
  for (const k of Object.keys(given)) {
    if (!known.has(k)) throw new Error(`${s.name}: unknown tensor '${k}' (this op reads ${[...known].map((n) => `'${n}'`).join(', ')})`);
  }
}

export interface CheckResult {
  op: string;
  case: string;
  seed: number;
  /** normwise relative error per output / grad */
  errors: Record<string, number>;
  tolerance: { forward: number; backward: number };
  ok: boolean;
  gpuMs: number;
}

/** one op case on fresh random inputs, GPU (outputs poisoned with NaN first) against the float64 reference */
export async function checkOp(g: Gpu, name: string, caseName: string, seed: number): Promise<CheckResult> {
  const s = spec(name);
  const c = s.cases.find((x) => x.name === caseName);
  if (!c) throw new Error(`${name} has no case '${caseName}' (cases: ${s.cases.map((x) => x.name).join('; ')})`);
  const rng = new Rng(seed);
  const inputs = s.makeInputs(rng, c);
  const opts = resolveOptions(s, c.options);
  const want: Tensors = { ...s.reference.forward(inputs, opts) };
  const given: Tensors = { ...inputs };
  if (s.hasBackward) {
    const gradOutputs: Tensors = {};
    for (const k of s.outputs) {
      gradOutputs[k] = randomLike(rng, want[k]);
      given[`grad_${k}`] = gradOutputs[k];
    }
    const grads = s.reference.backward!(inputs, opts, gradOutputs);
    for (const [k, v] of Object.entries(grads)) want[`grad_${k}`] = v;
  }
  const poison = g.poison;
  g.poison = true;
  const t0 = performance.now();
  let got: Tensors;
  try {
    got = await runOp(g, name, given, c.options ?? {}, s.hasBackward);
  } finally {
    g.poison = poison;
  }
  const gpuMs = performance.now() - t0;
  const errors: Record<string, number> = {};
  let ok = true;
  for (const [k, w] of Object.entries(want)) {
    if (!s.outputs.includes(k) && !s.saved?.includes(k) && !k.startsWith('grad_')) continue;
    const e = got[k] ? relError(got[k].data, w.data) : Infinity;
    errors[k] = e;
    if (!(e <= (k.startsWith('grad_') ? s.tolerance.backward : s.tolerance.forward))) ok = false;
  }
  return { op: name, case: caseName, seed, errors, tolerance: { forward: s.tolerance.forward, backward: s.tolerance.backward }, ok, gpuMs };
}
