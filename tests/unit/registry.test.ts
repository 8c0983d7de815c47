// The op table is complete and consistent: every op the issue lists has a reference spec and a GPU op,
// every spec has a tiny first case, odd sizes and a large case, and kernel names are unique.
import { describe, expect, it } from 'vitest';
import { KERNELS } from '../../client/kernels.ts';
import { GPU_OPS } from '../../client/ops/index.ts';
import { SPECS } from '../../shared/reference/index.ts';

const TABLE = ['matmul', 'softmax', 'cross_entropy', 'layer_norm', 'gelu', 'tanh', 'sigmoid', 'add', 'embedding', 'attention', 'rnn', 'lstm', 'gru', 'adamw'];

describe('op registry', () => {
  it.each(SPECS.map((s) => s.name))('%s has a GPU op and well-formed cases', (name) => {
    const s = SPECS.find((x) => x.name === name)!;
    expect(GPU_OPS.has(name)).toBe(true);
    expect(s.cases[0].name.startsWith('tiny')).toBe(true);
    expect(s.cases.some((c) => c.large)).toBe(true);
    expect(s.cases.some((c) => c.name.startsWith('odd'))).toBe(true);
    expect(s.tolerance.why.length).toBeGreaterThan(10);
  });
  it('kernel names are unique', () => {
    const names = KERNELS.map((k) => k.name);
    expect(new Set(names).size).toBe(names.length);
  });
  it('lists every op of the issue table', () => {
    // Families land one by one; this names the ones still missing when it fails.
    const missing = TABLE.filter((t) => !SPECS.some((s) => s.name === t));
    expect(missing, `ops without a spec yet`).toEqual([]);
  });
});
