// What rnn, lstm and gru share on the CPU side: the input table, shape checks, test cases and tolerance.
// One layer, unidirectional, batch_first=True, as torch.nn.RNN / LSTM / GRU with num_layers=1.
//
// Shapes (G gates per hidden unit: RNN 1, LSTM 4 (i, f, g, o), GRU 3 (r, z, n)):
//   x             (B, T, I)          alias input
//   h0, c0        (1, B, H) or (B, H) optional (zeros), aliases hx / h_0, c_0
//   weight_ih_l0  (G·H, I)           alias weight_ih
//   weight_hh_l0  (G·H, H)           alias weight_hh
//   bias_ih_l0    (G·H)              alias bias_ih
//   bias_hh_l0    (G·H)              alias bias_hh
//   out (B, T, H), h_n (1, B, H), c_n (1, B, H) (LSTM)
import type { InputSpec, OpCase, Tensors, Tolerance } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { shapeStr, type HostTensor } from '../tensor.ts';

export interface RecurrentDims {
  B: number;
  T: number;
  I: number;
  H: number;
}

export function recurrentInputs(withCell: boolean): InputSpec[] {
  return [
    { name: 'x', aliases: ['input'], differentiable: true },
    { name: 'h0', aliases: ['hx', 'h_0'], optional: true, differentiable: true },
    ...(withCell ? [{ name: 'c0', aliases: ['c_0'], optional: true, differentiable: true }] : []),
    { name: 'weight_ih_l0', aliases: ['weight_ih'], differentiable: true },
    { name: 'weight_hh_l0', aliases: ['weight_hh'], differentiable: true },
    { name: 'bias_ih_l0', aliases: ['bias_ih'], differentiable: true },
    { name: 'bias_hh_l0', aliases: ['bias_hh'], differentiable: true },
  ];
}

type Shape = readonly number[];

/**
 * (B, T, I, H) from the shapes, with the clear errors the GPU ops throw too. `name` is the op, G its gate
 * count; h0 / c0 may be absent. H comes from weight_hh_l0's columns.
 */
export function recurrentDims(name: string, G: number, s: { x: Shape; h0?: Shape; c0?: Shape; wih: Shape; whh: Shape; bih: Shape; bhh: Shape }): RecurrentDims {
  const gh = G === 1 ? 'H' : `${G}·H`;
  if (s.x.length !== 3) throw new Error(`${name}: x is ${shapeStr(s.x)} but must be (B, T, I) (batch_first=True; unbatched input is not supported)`);
  const [B, T, I] = s.x;
  if (B < 1 || T < 1 || I < 1) throw new Error(`${name}: x is ${shapeStr(s.x)}: batch, sequence length and input size must be at least 1`);
  if (s.whh.length !== 2 || s.whh[1] < 1 || s.whh[0] !== G * s.whh[1]) {
    throw new Error(`${name}: weight_hh_l0 is ${shapeStr(s.whh)} but must be (${gh}, H)${s.whh.length === 2 ? ` = (${G * s.whh[1]}, ${s.whh[1]}) for H = ${s.whh[1]}` : ''}`);
  }
  const H = s.whh[1];
  if (s.wih.length !== 2 || s.wih[0] !== G * H || s.wih[1] !== I) {
    throw new Error(`${name}: weight_ih_l0 is ${shapeStr(s.wih)} but must be (${gh}, I) = (${G * H}, ${I}) for x of shape ${shapeStr(s.x)} and H = ${H}`);
  }
  for (const [n, b] of [['bias_ih_l0', s.bih], ['bias_hh_l0', s.bhh]] as const) {
    if (b.length !== 1 || b[0] !== G * H) throw new Error(`${name}: ${n} is ${shapeStr(b)} but must be (${G * H},) = (${gh},) for H = ${H}`);
  }
  for (const [n, st] of [['h0', s.h0], ['c0', s.c0]] as const) {
    if (!st) continue;
    const ok = (st.length === 3 && st[0] === 1 && st[1] === B && st[2] === H) || (st.length === 2 && st[0] === B && st[1] === H);
    if (!ok) throw new Error(`${name}: ${n} is ${shapeStr(st)} but must be (1, B, H) = (1, ${B}, ${H}) or (B, H) = (${B}, ${H}) (one layer, unidirectional)`);
  }
  return { B, T, I, H };
}

/** recurrentDims over host tensors by canonical name */
export function dimsOf(name: string, G: number, i: Tensors): RecurrentDims {
  return recurrentDims(name, G, {
    x: i.x.shape,
    h0: i.h0?.shape,
    c0: i.c0?.shape,
    wih: i.weight_ih_l0.shape,
    whh: i.weight_hh_l0.shape,
    bih: i.bias_ih_l0.shape,
    bhh: i.bias_hh_l0.shape,
  });
}

// dims.state = 0 leaves h0 (and c0) out: they default to zeros, as in PyTorch
export const recurrentCases: OpCase[] = [
  { name: 'tiny B2 T3 I3 H4', dims: { B: 2, T: 3, I: 3, H: 4, state: 1 } },
  { name: 'odd B3 T37 I29 H53', dims: { B: 3, T: 37, I: 29, H: 53, state: 1 } },
  { name: 'odd B3 T37 I29 H53 no h0', dims: { B: 3, T: 37, I: 29, H: 53, state: 0 } },
  { name: 'large B8 T64 I128 H256', dims: { B: 8, T: 64, I: 128, H: 256, state: 1 }, large: true },
];

/** inputs as PyTorch initialises the layer: weights and biases uniform in ±1/√H; x and states uniform in ±1 */
export function recurrentMakeInputs(G: number, withCell: boolean) {
  return (rng: Rng, c: OpCase): Tensors => {
    const { B, T, I, H, state } = c.dims;
    const k = 1 / Math.sqrt(H);
    const t: Tensors = {
      x: { shape: [B, T, I], data: rng.floats(B * T * I) },
      weight_ih_l0: { shape: [G * H, I], data: rng.floats(G * H * I, -k, k) },
      weight_hh_l0: { shape: [G * H, H], data: rng.floats(G * H * H, -k, k) },
      bias_ih_l0: { shape: [G * H], data: rng.floats(G * H, -k, k) },
      bias_hh_l0: { shape: [G * H], data: rng.floats(G * H, -k, k) },
    };
    if (state) {
      t.h0 = { shape: [1, B, H], data: rng.floats(B * H) };
      if (withCell) t.c0 = { shape: [1, B, H], data: rng.floats(B * H) };
    }
    return t;
  };
}

export const recurrentTolerance: Tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why:
    'each step is an fp32 dot product of length I or H (≤ 256 here, error ~1e-6 relative) through tanh/sigmoid, whose ' +
    'slopes ≤ 1 and weights of norm ~1 (PyTorch init) keep rounding errors from growing along the sequence; BPTT ' +
    'sums dW over B·T rows and dh over T steps, a few more ulps per step but still far under 1e-3',
};

export const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** a (B, H) state by its own shape, or zeros */
export const stateOf = (t: HostTensor | undefined, n: number): Float64Array => (t ? Float64Array.from(t.data) : new Float64Array(n));

/** grad_<name> as float64, zeros when the caller left it out */
export const gradOf = (g: Tensors, name: string, n: number): Float64Array => (g[name] ? Float64Array.from(g[name].data) : new Float64Array(n));

export const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });
