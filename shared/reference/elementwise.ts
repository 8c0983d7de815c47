// CPU references (float64) for the elementwise family: F.gelu(approximate='tanh'), torch.tanh,
// torch.sigmoid, and the residual add. Mirrors shaders/elementwise.wgsl.
import type { OpCase, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { toF64, type HostTensor } from '../tensor.ts';

const S = Math.sqrt(2 / Math.PI);
const C = 0.044715;

export const geluForward = (x: Float64Array) => x.map((v) => 0.5 * v * (1 + Math.tanh(S * (v + C * v * v * v))));
export const geluBackward = (x: Float64Array, dout: Float64Array) =>
  x.map((v, i) => {
    const t = Math.tanh(S * (v + C * v * v * v));
    return dout[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * S * (1 + 3 * C * v * v));
  });
export const tanhForward = (x: Float64Array) => x.map(Math.tanh);
export const tanhBackward = (out: Float64Array, dout: Float64Array) => out.map((t, i) => dout[i] * (1 - t * t));
export const sigmoidForward = (x: Float64Array) => x.map((v) => 1 / (1 + Math.exp(-v)));
export const sigmoidBackward = (out: Float64Array, dout: Float64Array) => out.map((s, i) => dout[i] * s * (1 - s));

const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });

// Elementwise results need no reduction, so fp32 error is a few ulps of each element: 1e-5 relative would
// hold; we keep the 1e-4 / 1e-3 bounds for uniformity.
const tolerance = { forward: 1e-4, backward: 1e-3, why: 'elementwise: a few fp32 ulps per element, no accumulation' };

const cases: OpCase[] = [
  { name: 'tiny 7', dims: { N: 7 } },
  { name: 'odd 37x53x29', dims: { N: 37 * 53 * 29 } },
  // a multiple of 4 (the vec4 kernels) that is not a multiple of the workgroup
  { name: 'odd 4x9x5 (vec4)', dims: { N: 4 * 9 * 5 } },
  { name: 'large 4M', dims: { N: 1 << 22 }, large: true },
];

function shapeOf(c: OpCase) {
  return c.dims.N === 37 * 53 * 29 ? [37, 53, 29] : c.dims.N === 180 ? [4, 9, 5] : [c.dims.N];
}

function unary(name: string, torch: string, fwd: (x: Float64Array) => Float64Array, bwd: (x: Float64Array, out: Float64Array, d: Float64Array) => Float64Array, range: number): OpSpec {
  return {
    name,
    family: 'elementwise',
    torch,
    inputs: [{ name: 'x', aliases: ['input'], differentiable: true }],
    outputs: ['out'],
    defaults: {},
    hasBackward: true,
    cases,
    makeInputs: (rng: Rng, c: OpCase) => ({ x: { shape: shapeOf(c), data: rng.floats(c.dims.N, -range, range) } }),
    reference: {
      forward: (i: Tensors) => ({ out: f64(i.x.shape, fwd(toF64(i.x))) }),
      backward: (i: Tensors, _o, g: Tensors) => {
        const x = toF64(i.x);
        return { x: f64(i.x.shape, bwd(x, fwd(x), toF64(g.out))) };
      },
    },
    tolerance,
  };
}

export const elementwiseOps: OpSpec[] = [
  unary('gelu', "F.gelu(x, approximate='tanh')", geluForward, (x, _o, d) => geluBackward(x, d), 6),
  unary('tanh', 'torch.tanh(x)', tanhForward, (_x, o, d) => tanhBackward(o, d), 4),
  unary('sigmoid', 'torch.sigmoid(x)', sigmoidForward, (_x, o, d) => sigmoidBackward(o, d), 8),
  {
    name: 'add',
    family: 'elementwise',
    torch: 'torch.add(input, other) (residual add, same shapes)',
    inputs: [
      { name: 'input', aliases: ['x', 'a'], differentiable: true },
      { name: 'other', aliases: ['y', 'b'], differentiable: true },
    ],
    outputs: ['out'],
    defaults: {},
    hasBackward: true,
    cases,
    makeInputs: (rng, c) => ({ input: { shape: shapeOf(c), data: rng.floats(c.dims.N) }, other: { shape: shapeOf(c), data: rng.floats(c.dims.N) } }),
    reference: {
      forward: (i) => {
        if (i.input.data.length !== i.other.data.length) throw new Error(`add: input ${i.input.shape} and other ${i.other.shape} differ in shape`);
        const a = toF64(i.input);
        const b = toF64(i.other);
        return { out: f64(i.input.shape, a.map((v, j) => v + b[j])) };
      },
      backward: (i, _o, g) => ({ input: f64(i.input.shape, toF64(g.out)), other: f64(i.other.shape, toF64(g.out)) }),
    },
    tolerance,
  },
];
