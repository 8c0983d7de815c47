// Host-side checks of softmax, cross_entropy and layer_norm (their specs' validate and options): each bad
// input is refused with a message naming what is wrong.
import { describe, expect, it } from 'vitest';
import { resolveOptions, type OpSpec, type Tensors } from '../../shared/ops.ts';
import { crossEntropyOps } from '../../shared/reference/cross_entropy.ts';
import { layerNormOps } from '../../shared/reference/layer_norm.ts';
import { softmaxOps } from '../../shared/reference/softmax.ts';
import { crossEntropyForward } from '../../shared/reference/cross_entropy.ts';

const f = (...shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const ints = (shape: number[], values: number[]) => ({ shape, data: Int32Array.from(values) });
const run = (s: OpSpec, i: Tensors, o = {}) => () => s.validate!(i, resolveOptions(s, o));

describe('softmax validate', () => {
  const s = softmaxOps[0];
  it('accepts dim -1 and the last dim by number', () => {
    expect(run(s, { x: f(2, 3, 4) })).not.toThrow();
    expect(run(s, { x: f(2, 3, 4) }, { dim: 2 })).not.toThrow();
  });
  it('refuses other dims and 0-dim input', () => {
    expect(run(s, { x: f(2, 3, 4) }, { dim: 1 })).toThrow(/softmax: dim=1 is not supported for x of shape \(2, 3, 4\): only the last dim \(dim=-1 or 2\) is/);
    expect(run(s, { x: f(2, 3) }, { dim: 'last' })).toThrow(/softmax: dim must be an integer/);
    expect(run(s, { x: f() })).toThrow(/softmax: x must have at least 1 dim/);
  });
});

describe('cross_entropy validate', () => {
  const s = crossEntropyOps[0];
  it('accepts ignored and in-range targets, with (..., C) logits', () => {
    expect(run(s, { logits: f(2, 3, 5), target: ints([2, 3], [0, 4, -1, 2, 3, 1]) })).not.toThrow();
  });
  it('names the first bad target value and its position', () => {
    expect(run(s, { logits: f(2, 3, 5), target: ints([2, 3], [0, 4, -1, 2, 7, -3]) })).toThrow(
      /cross_entropy: target value 7 at index \(1, 1\) is out of range: class indices must be in \[0, 5\) or equal ignore_index \(-1\)/,
    );
    expect(run(s, { logits: f(3, 5), target: ints([3], [0, -1, 1]) }, { ignore_index: -100 })).toThrow(/target value -1 at index 1 .* ignore_index \(-100\)/);
  });
  it('refuses mismatched shapes and bad options', () => {
    expect(run(s, { logits: f(4, 5), target: ints([3], [0, 1, 2]) })).toThrow(/cross_entropy: logits are \(4, 5\) so target must be \(4\) .*got \(3\)/);
    expect(run(s, { logits: f(4, 5), target: ints([4], [0, 1, 2, 3]) }, { reduction: 'avg' })).toThrow(/reduction must be 'mean', 'sum' or 'none', got "avg"/);
    expect(run(s, { logits: f(4, 5), target: ints([4], [0, 1, 2, 3]) }, { ignore_index: 0.5 })).toThrow(/ignore_index must be a 32-bit integer/);
  });
  it('reference: a mean over only ignored rows is NaN, a sum is 0', () => {
    const x = new Float64Array(6);
    const t = Int32Array.of(-1, -1);
    expect(crossEntropyForward(x, t, 2, 3, -1, 'mean').out[0]).toBeNaN();
    expect(crossEntropyForward(x, t, 2, 3, -1, 'sum').out[0]).toBe(0);
  });
});

describe('layer_norm validate', () => {
  const s = layerNormOps[0];
  it('accepts normalized_shape [C], C, or null, and absent weight / bias', () => {
    expect(run(s, { x: f(2, 7), weight: f(7), bias: f(7) }, { normalized_shape: [7] })).not.toThrow();
    expect(run(s, { x: f(2, 7) }, { normalized_shape: 7 })).not.toThrow();
  });
  it('refuses other normalized shapes, wrong weight / bias shapes and a bad eps', () => {
    expect(run(s, { x: f(2, 7) }, { normalized_shape: [2, 7] })).toThrow(/normalized_shape \[2,7\] is not supported .*\(normalized_shape = \[7\] or null\)/);
    expect(run(s, { x: f(2, 7), weight: f(6) })).toThrow(/layer_norm: weight must be \(7\) for x of shape \(2, 7\), got \(6\)/);
    expect(run(s, { x: f(2, 7), bias: f(7, 1) })).toThrow(/layer_norm: bias must be \(7\)/);
    expect(run(s, { x: f(2, 7) }, { eps: -1 })).toThrow(/eps must be a number ≥ 0/);
  });
});
