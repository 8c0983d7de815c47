// Checks rnn, lstm and gru share beyond the op table's cases (tests/gpu/{rnn,lstm,gru}.test.ts call these):
// the clear errors for bad shapes, and the functions models call directly (client/ops/{rnn,lstm,gru}.ts),
// run in Node through Dawn: grads left out count as zeros, weight grads accumulate into given tensors, and the
// step variant real GPUs get (k loop split across a workgroup) is right here too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { gruBackward, gruForward } from '../../client/ops/gru.ts';
import { lstmBackward, lstmForward } from '../../client/ops/lstm.ts';
import { forceStepVariant, type RecurrentBackwardOptions, type RecurrentWeights } from '../../client/ops/recurrent.ts';
import { rnnBackward, rnnForward } from '../../client/ops/rnn.ts';
import type { Gpu, GpuTensor } from '../../client/runtime/gpu.ts';
import { relError, type Tensors } from '../../shared/ops.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { checkOp, spec } from '../../client/runner.ts';

type Op = 'rnn' | 'lstm' | 'gru';
const GATES: Record<Op, number> = { rnn: 1, lstm: 4, gru: 3 };

/** forward then backward through the model API; grads by canonical input name */
function run(g: Gpu, op: Op, i: Record<string, GpuTensor>, dOut?: GpuTensor, dhN?: GpuTensor, dcN?: GpuTensor, opts?: RecurrentBackwardOptions) {
  const w: RecurrentWeights = { wih: i.weight_ih_l0, whh: i.weight_hh_l0, bih: i.bias_ih_l0, bhh: i.bias_hh_l0 };
  let r: { dx: GpuTensor; dh0: GpuTensor; dc0?: GpuTensor; dWih: GpuTensor; dWhh: GpuTensor; dbih: GpuTensor; dbhh: GpuTensor };
  if (op === 'lstm') {
    const f = lstmForward(g, i.x, i.h0, i.c0, w);
    r = lstmBackward(g, w, f.saved, dOut, dhN, dcN, opts);
  } else if (op === 'gru') {
    const f = gruForward(g, i.x, i.h0, w);
    r = gruBackward(g, w, f.saved, dOut, dhN, opts);
  } else {
    const f = rnnForward(g, i.x, i.h0, w);
    r = rnnBackward(g, w, f.saved, dOut, dhN, opts);
  }
  const grads: Record<string, GpuTensor> = { x: r.dx, h0: r.dh0, weight_ih_l0: r.dWih, weight_hh_l0: r.dWhh, bias_ih_l0: r.dbih, bias_hh_l0: r.dbhh };
  if (r.dc0) grads.c0 = r.dc0;
  return grads;
}

const fake = (shape: number[]) => ({ buffer: null, shape, dtype: 'f32' }) as unknown as GpuTensor;

export function recurrentExtraTests(op: Op): void {
  const G = GATES[op];
  const s = spec(op);
  const cell = op === 'lstm';

  describe(`${op} rejects bad shapes with clear errors`, () => {
    const good = () => s.makeInputs(new Rng(1), s.cases[0]); // B2 T3 I3 H4
    const bad = (k: string, shape: number[]): Tensors => ({ ...good(), [k]: { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) } });
    it.each([
      ['x', [6, 3], /x is \(6, 3\) but must be \(B, T, I\)/],
      ['weight_hh_l0', [G * 4, 5], new RegExp(`weight_hh_l0 is \\(${G * 4}, 5\\) but must be \\(${G === 1 ? 'H' : `${G}·H`}, H\\) = \\(${G * 5}, 5\\)`)],
      ['weight_ih_l0', [G * 4, 7], new RegExp(`weight_ih_l0 is \\(${G * 4}, 7\\) but must be .* = \\(${G * 4}, 3\\)`)],
      ['bias_hh_l0', [G * 4 + 1], new RegExp(`bias_hh_l0 is \\(${G * 4 + 1}\\) but must be \\(${G * 4},\\)`)],
      ['h0', [2, 2, 4], /h0 is \(2, 2, 4\) but must be \(1, B, H\) = \(1, 2, 4\) or \(B, H\) = \(2, 4\)/],
      ...(cell ? [['c0', [2, 5], /c0 is \(2, 5\) but must be/] as const] : []),
    ] as const)('%s of shape %j', (k, shape, msg) => {
      expect(() => s.validate!(bad(k, [...shape]), {})).toThrow(msg);
    });
    it('the GPU function throws the same error before recording anything', () => {
      const w = { wih: fake([G * 4, 3]), whh: fake([G * 4, 5]), bih: fake([G * 4]), bhh: fake([G * 4]) };
      const g = null as unknown as Gpu; // any use of it would throw a TypeError instead
      const x = fake([2, 3, 3]);
      const call = () => (op === 'lstm' ? lstmForward(g, x, undefined, undefined, w) : op === 'gru' ? gruForward(g, x, undefined, w) : rnnForward(g, x, undefined, w));
      expect(call).toThrow(/weight_hh_l0 is/);
    });
  });

  describe(`${op} model API (Node, Dawn)`, () => {
    let g: Gpu;
    beforeAll(async () => {
      g = await openNodeGpu();
    });
    afterAll(() => g?.destroy());

    const setup = () => {
      const rng = new Rng(7);
      const host = s.makeInputs(rng, { name: 'api', dims: { B: 5, T: 6, I: 7, H: 9, state: 1 } });
      const want = s.reference.forward(host, {});
      const inputs: Record<string, GpuTensor> = {};
      for (const [k, t] of Object.entries(host)) inputs[k] = g.upload(t, k);
      return { rng, host, want, inputs };
    };

    it.each([
      [{ JT: 16, KS: 16 }, s.cases[0].name],
      [{ JT: 16, KS: 16 }, s.cases[2].name],
      [{ JT: 8, KS: 3 }, s.cases[1].name],
    ])('step variant %j matches the reference on %s', async (v, c) => {
      forceStepVariant(v);
      try {
        const seed = freshSeed();
        const r = await checkOp(g, op, c, seed);
        expect(r.ok, `seed ${seed}: ${JSON.stringify(r.errors)}`).toBe(true);
      } finally {
        forceStepVariant(null);
      }
    });

    it('grads left out (undefined) count as zeros, as in the reference', async () => {
      const { rng, host, want, inputs } = setup();
      const dOut: Tensors = { out: { shape: want.out.shape, data: rng.normals(want.out.data.length) } };
      const ref = s.reference.backward!(host, {}, dOut);
      const got = run(g, op, inputs, g.upload(dOut.out));
      for (const [k, w] of Object.entries(ref)) {
        const e = relError(await g.read(got[k]), w.data);
        expect(e, `grad ${k}`).toBeLessThanOrEqual(s.tolerance.backward);
      }
      // and only a final-state grad, no grad for out
      const dState: Tensors = { h_n: { shape: want.h_n.shape, data: rng.normals(want.h_n.data.length) } };
      if (cell) dState.c_n = { shape: want.c_n.shape, data: rng.normals(want.c_n.data.length) };
      const ref2 = s.reference.backward!(host, {}, dState);
      const got2 = run(g, op, inputs, undefined, g.upload(dState.h_n), cell ? g.upload(dState.c_n) : undefined);
      for (const [k, w] of Object.entries(ref2)) {
        const e = relError(await g.read(got2[k]), w.data);
        expect(e, `grad ${k} from h_n${cell ? ', c_n' : ''} only`).toBeLessThanOrEqual(s.tolerance.backward);
      }
    });

    it('adds weight grads into given tensors with accumulate', async () => {
      const { rng, want, inputs } = setup();
      const dOut = g.upload({ shape: want.out.shape, data: rng.normals(want.out.data.length) });
      const once = run(g, op, inputs, dOut);
      const into = { dWih: g.zeros(inputs.weight_ih_l0.shape), dWhh: g.zeros(inputs.weight_hh_l0.shape), dbih: g.zeros(inputs.bias_ih_l0.shape), dbhh: g.zeros(inputs.bias_hh_l0.shape) };
      run(g, op, inputs, dOut, undefined, undefined, { into, accumulate: true });
      const twice = run(g, op, inputs, dOut, undefined, undefined, { into, accumulate: true });
      expect(twice.weight_hh_l0.buffer).toBe(into.dWhh.buffer);
      for (const [k, t] of [['weight_ih_l0', into.dWih], ['weight_hh_l0', into.dWhh], ['bias_ih_l0', into.dbih], ['bias_hh_l0', into.dbhh]] as const) {
        const one = await g.read(once[k]);
        const e = relError(await g.read(t), one.map((v) => 2 * v));
        expect(e, `2 × grad ${k}`).toBeLessThanOrEqual(1e-6);
      }
      expect(() => run(g, op, inputs, dOut, undefined, undefined, { accumulate: true })).toThrow(/accumulate needs `into`/);
    });
  });
}
