// matmul's host-side validation (what `gradswarm op matmul` reports before anything reaches the GPU).
import { describe, expect, it } from 'vitest';
import { matmulOps } from '../../shared/reference/matmul.ts';
import type { Tensors } from '../../shared/ops.ts';

const spec = matmulOps[0];
const t = (...shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((x, y) => x * y, 1)) });
const validate = (i: Tensors, o: Record<string, unknown> = {}) => () => spec.validate!(i, { ...spec.defaults, ...o });

describe('matmul validate', () => {
  it('accepts plain, transposed, batched and shared shapes', () => {
    expect(validate({ a: t(3, 5), b: t(5, 4), bias: t(4) })).not.toThrow();
    expect(validate({ a: t(5, 3), b: t(4, 5) }, { transpose_a: true, transpose_b: true })).not.toThrow();
    expect(validate({ a: t(2, 7, 3, 5), b: t(5, 4) })).not.toThrow();
    expect(validate({ a: t(3, 5), b: t(2, 5, 4) })).not.toThrow();
  });
  it('rejects mismatched inner sizes', () => {
    expect(validate({ a: t(3, 5), b: t(4, 6) })).toThrow('matmul: a is (3, 5) but b is (4, 6): inner sizes 5 and 4 differ');
    expect(validate({ a: t(3, 5), b: t(5, 4) }, { transpose_a: true })).toThrow('(with transpose_a): inner sizes 3 and 5 differ');
  });
  it('rejects mismatched batch dims, 1-D inputs and a wrong bias', () => {
    expect(validate({ a: t(2, 3, 5), b: t(3, 5, 4) })).toThrow('batch dims (2) and (3) differ');
    expect(validate({ a: t(5), b: t(5, 4) })).toThrow('a is (5) but must have at least 2 dims');
    expect(validate({ a: t(3, 5), b: t(5) })).toThrow('b is (5) but must have at least 2 dims');
    expect(validate({ a: t(3, 5), b: t(5, 4), bias: t(5) })).toThrow('bias is (5) but must be (4,)');
  });
});
