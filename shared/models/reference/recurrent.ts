// CPU reference RNN / LSTM / GRU language models (float64), composed from the op references in
// shared/reference: embedding → num_layers stacked torch.nn.RNN(tanh) / LSTM / GRU layers (batch_first,
// zero initial state per batch row) → head nn.Linear(H, V) → mean cross entropy over targets ≠ -1.
// As PyTorch: `out, _ = self.rnn(self.embedding(idx)); logits = self.head(out)`.
import { crossEntropyBackward, crossEntropyForward } from '../../reference/cross_entropy.ts';
import { embeddingBackward, embeddingForward } from '../../reference/embedding.ts';
import { gruBackward, gruForward, type GruActs } from '../../reference/gru.ts';
import { lstmBackward, lstmForward, type LstmActs } from '../../reference/lstm.ts';
import { matmulBackward, matmulForward, matmulShape } from '../../reference/matmul.ts';
import type { RecurrentDims } from '../../reference/recurrent.ts';
import { rnnBackward, rnnForward, type RnnActs } from '../../reference/rnn.ts';
import type { RecurrentConfig } from '../config.ts';
import type { ParamLayout } from '../layout.ts';

interface Weights {
  wih: Float64Array;
  whh: Float64Array;
  bih: Float64Array;
  bhh: Float64Array;
}

type Acts = RnnActs | LstmActs | GruActs;

/** one layer of the family: forward from zero state, and BPTT with no gradient into h_n / c_n (the loss reads out only) */
function cell(model: RecurrentConfig['model']) {
  const zeros = (n: number) => new Float64Array(n);
  switch (model) {
    case 'rnn':
      return {
        forward: (x: Float64Array, w: Weights, d: RecurrentDims): Acts => rnnForward(x, zeros(d.B * d.H), w, d),
        backward: (x: Float64Array, w: Weights, a: Acts, dout: Float64Array, d: RecurrentDims) => rnnBackward(x, w, a as RnnActs, dout, zeros(d.B * d.H), d),
      };
    case 'lstm':
      return {
        forward: (x: Float64Array, w: Weights, d: RecurrentDims): Acts => lstmForward(x, zeros(d.B * d.H), zeros(d.B * d.H), w, d),
        backward: (x: Float64Array, w: Weights, a: Acts, dout: Float64Array, d: RecurrentDims) =>
          lstmBackward(x, w, a as LstmActs, dout, zeros(d.B * d.H), zeros(d.B * d.H), d),
      };
    case 'gru':
      return {
        forward: (x: Float64Array, w: Weights, d: RecurrentDims): Acts => gruForward(x, zeros(d.B * d.H), w, d),
        backward: (x: Float64Array, w: Weights, a: Acts, dout: Float64Array, d: RecurrentDims) => gruBackward(x, w, a as GruActs, dout, zeros(d.B * d.H), d),
      };
  }
}

export function recurrentLoss(config: RecurrentConfig, layout: ParamLayout, params: Float64Array, idx: Int32Array, targets: Int32Array, B: number, T: number, grads?: Float64Array): number {
  const { vocab_size: V, embed_size: E, hidden_size: H, num_layers: L } = config;
  const N = B * T;
  const P = (name: string) => layout.view(params, name);
  const weights = (k: number): Weights => ({ wih: P(`rnn.weight_ih_l${k}`), whh: P(`rnn.weight_hh_l${k}`), bih: P(`rnn.bias_ih_l${k}`), bhh: P(`rnn.bias_hh_l${k}`) });
  const dims = (k: number): RecurrentDims => ({ B, T, I: k === 0 ? E : H, H });
  const c = cell(config.model);

  // forward
  const emb = new Float64Array(N * E);
  embeddingForward(emb, idx, P('embedding.weight'), N, E);
  const inputs: Float64Array[] = [emb]; // inputs[k]: layer k's input (B, T, I_k); inputs[L]: the last layer's out
  const acts: Acts[] = [];
  for (let k = 0; k < L; k++) {
    acts.push(c.forward(inputs[k], weights(k), dims(k)));
    inputs.push(acts[k].out);
  }
  const headShape = matmulShape([N, H], [V, H], false, true, [V]);
  const logits = new Float64Array(N * V);
  matmulForward(logits, inputs[L], P('head.weight'), P('head.bias'), headShape, false, true);
  const ce = crossEntropyForward(logits, targets, N, V, -1, 'mean');
  const loss = ce.out[0];
  if (!grads) return loss;

  // backward: each gradient view is written once (=)
  const G = (name: string) => layout.view(grads, name);
  const dlogits = crossEntropyBackward(logits, targets, ce.lse, Float64Array.of(1), N, V, -1, 'mean');
  let dout: Float64Array = new Float64Array(N * H);
  matmulBackward(dout, G('head.weight'), G('head.bias'), dlogits, inputs[L], P('head.weight'), headShape, false, true);
  for (let k = L - 1; k >= 0; k--) {
    const r = c.backward(inputs[k], weights(k), acts[k], dout, dims(k));
    G(`rnn.weight_ih_l${k}`).set(r.wih);
    G(`rnn.weight_hh_l${k}`).set(r.whh);
    G(`rnn.bias_ih_l${k}`).set(r.bih);
    G(`rnn.bias_hh_l${k}`).set(r.bhh);
    dout = r.x;
  }
  embeddingBackward(G('embedding.weight'), idx, dout, N, E, -1);
  return loss;
}
