// The kernel benchmark's table (bench/cases.ts) stays in step with the op table: its inputs and options are
// the ones each op's spec declares, so a renamed input shows up here rather than as an error row in a long run.
import { describe, expect, it } from 'vitest';
import { CASES, ROWS, selectRows } from '../../bench/cases.ts';
import { SPECS } from '../../shared/reference/index.ts';

describe('bench table', () => {
  it('row keys are unique', () => {
    expect(new Set(ROWS.map((r) => r.key)).size).toBe(ROWS.length);
  });

  it.each(CASES.map((c) => [`${c.op} ${c.size}${c.note ? ` ${c.note}` : ''}`, c] as const))('%s matches its op spec', (_name, c) => {
    const spec = SPECS.find((s) => s.name === c.op);
    if (!spec) return; // the family has not landed yet: the bench reports it as not implemented
    const canonical = spec.inputs.map((i) => i.name);
    for (const k of Object.keys(c.inputs)) expect(canonical, `input '${k}'`).toContain(k);
    for (const i of spec.inputs) if (!i.optional) expect(Object.keys(c.inputs), `required input '${i.name}'`).toContain(i.name);
    for (const i of spec.inputs) if (c.inputs[i.name]) expect(Boolean(c.inputs[i.name].int), `'${i.name}' integer`).toBe(Boolean(i.int));
    for (const k of Object.keys(c.options ?? {})) expect(Object.keys(spec.defaults), `option '${k}'`).toContain(k);
    if (c.backward) expect(spec.hasBackward, 'a backward row needs an op with a backward').toBe(true);
  });

  it('tiers nest and --only is checked', () => {
    expect(selectRows('quick').length).toBeLessThan(selectRows('full').length);
    expect(selectRows('full').length).toBeLessThan(selectRows('gpu').length);
    expect(selectRows('full', ['gelu']).every((r) => r.op === 'gelu')).toBe(true);
    expect(() => selectRows('full', ['gelus'])).toThrow(/no benchmark rows for op 'gelus'/);
  });
});
