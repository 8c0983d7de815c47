// The rnn / lstm / gru language models on the GPU kernels, as the CPU reference (shared/models/reference/
// recurrent.ts) and PyTorch's `out, _ = rnn(embedding(idx)); logits = head(out)`:
//   embedding (B, T, E) → num_layers stacked layers from zero state (layer k reads layer k−1's out, (B, T, H))
//   → head logits (B·T, V) = out W_headᵀ + b_head → mean cross entropy over targets ≠ −1.
// A step records forward and backward in one go (one submit), gathers the per-tensor grads and the loss into
// one flat buffer with recorded copies, and reads that back once (a second submit: the readback copy).
// Activations and scratch come from the Gpu's buffer pool and are all released at the end of the step, so
// from the second step with the same (B, T) on every acquire is a hit and nothing is allocated.
import type { RecurrentConfig } from '../../shared/models/config.ts';
import { crossEntropy, crossEntropyBackward } from '../ops/cross_entropy.ts';
import { embedding, embeddingBackward } from '../ops/embedding.ts';
import { gruBackward, gruForward, releaseGruSaved } from '../ops/gru.ts';
import { lstmBackward, lstmForward, releaseLstmSaved } from '../ops/lstm.ts';
import { matmul, sumRows } from '../ops/matmul.ts';
import type { RecurrentWeightGrads, RecurrentWeights } from '../ops/recurrent.ts';
import { releaseRnnSaved, rnnBackward, rnnForward } from '../ops/rnn.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { GpuParams } from './params.ts';

const IGNORE_INDEX = -1;

/** one layer's forward (zero initial state) and BPTT (no grad into h_n / c_n: the loss reads out only) */
interface Layer {
  out: GpuTensor; // (B, T, H), the next layer's input
  /** records BPTT; writes the weight grads into `into` and returns dx (B, T, I); frees the layer's saved tensors */
  backward(dOut: GpuTensor, into: RecurrentWeightGrads): GpuTensor;
}

function layerForward(g: Gpu, model: RecurrentConfig['model'], x: GpuTensor, w: RecurrentWeights): Layer {
  switch (model) {
    case 'rnn': {
      const { out, hN, saved } = rnnForward(g, x, undefined, w);
      g.release(hN);
      return {
        out,
        backward(dOut, into) {
          const r = rnnBackward(g, w, saved, dOut, undefined, { into });
          releaseRnnSaved(g, saved);
          g.release(r.dh0);
          return r.dx;
        },
      };
    }
    case 'lstm': {
      const { out, hN, cN, saved } = lstmForward(g, x, undefined, undefined, w);
      g.release(hN, cN);
      return {
        out,
        backward(dOut, into) {
          const r = lstmBackward(g, w, saved, dOut, undefined, undefined, { into });
          releaseLstmSaved(g, saved);
          g.release(r.dh0, r.dc0);
          return r.dx;
        },
      };
    }
    case 'gru': {
      const { out, hN, saved } = gruForward(g, x, undefined, w);
      g.release(hN);
      return {
        out,
        backward(dOut, into) {
          const r = gruBackward(g, w, saved, dOut, undefined, { into });
          releaseGruSaved(g, saved);
          g.release(r.dh0);
          return r.dx;
        },
      };
    }
  }
}

export class RecurrentModel {
  readonly params: GpuParams;
  /** dL/dloss = 1, the seed of backward (written once) */
  private readonly one: GpuTensor;
  /** idx and targets (B, T) i32, kept while (B, T) stays the same */
  private batch: { B: number; T: number; idx: GpuTensor; targets: GpuTensor } | null = null;

  constructor(
    private readonly g: Gpu,
    readonly config: RecurrentConfig,
  ) {
    this.params = new GpuParams(g, config);
    this.one = g.tensor([]);
    g.fill(this.one, 1);
  }

  /** upload the parameters from a flat Float32Array in the layout */
  setParams(flat: Float32Array): void {
    this.params.set(flat);
  }

  private weights(k: number): RecurrentWeights {
    const p = (n: string) => this.params.weight(`rnn.${n}_l${k}`);
    return { wih: p('weight_ih'), whh: p('weight_hh'), bih: p('bias_ih'), bhh: p('bias_hh') };
  }

  private weightGrads(k: number): RecurrentWeightGrads {
    const p = (n: string) => this.params.grad(`rnn.${n}_l${k}`);
    return { dWih: p('weight_ih'), dWhh: p('weight_hh'), dbih: p('bias_ih'), dbhh: p('bias_hh') };
  }

  private upload(idx: Int32Array, targets: Int32Array, B: number, T: number) {
    const N = B * T;
    if (idx.length !== N || targets.length !== N) throw new Error(`batch: idx has ${idx.length} and targets ${targets.length} elements, but (B, T) = (${B}, ${T}) needs ${N} each`);
    if (!this.batch || this.batch.B !== B || this.batch.T !== T) {
      if (this.batch) this.g.release(this.batch.idx, this.batch.targets);
      this.batch = { B, T, idx: this.g.tensor([B, T], 'i32', 'idx'), targets: this.g.tensor([B, T], 'i32', 'targets') };
    }
    this.g.flush(); // queue writes land at once: submit what is recorded before them first
    this.g.device.queue.writeBuffer(this.batch.idx.buffer, 0, idx.buffer, idx.byteOffset, idx.byteLength);
    this.g.device.queue.writeBuffer(this.batch.targets.buffer, 0, targets.buffer, targets.byteOffset, targets.byteLength);
    return this.batch;
  }

  /**
   * Mean cross entropy over targets ≠ −1 (NaN when every target is ignored) and its gradient for every
   * parameter, as a fresh Float32Array in the flat layout. idx, targets: (B, T) row-major. Ids are not
   * range-checked here (the GPU functions do not read them back): check batches on the host first.
   */
  async lossAndGrads(idx: Int32Array, targets: Int32Array, B: number, T: number): Promise<{ loss: number; grads: Float32Array }> {
    const { g, config } = this;
    const { vocab_size: V, hidden_size: H, num_layers: L } = config;
    const N = B * T;
    const batch = this.upload(idx, targets, B, T);
    const P = (n: string) => this.params.weight(n);
    const D = (n: string) => this.params.grad(n);

    // forward
    const emb = embedding(g, batch.idx, P('embedding.weight')); // (B, T, E)
    const layers: Layer[] = [];
    let x = emb;
    for (let k = 0; k < L; k++) {
      layers.push(layerForward(g, config.model, x, this.weights(k)));
      x = layers[k].out; // (B, T, H)
    }
    const hidden: GpuTensor = { ...x, shape: [N, H] };
    const logits = matmul(g, hidden, P('head.weight'), { transB: true, bias: P('head.bias') }); // (N, V)
    const flatTargets: GpuTensor = { ...batch.targets, shape: [N] };
    const { loss, lse } = crossEntropy(g, logits, flatTargets, { ignoreIndex: IGNORE_INDEX });

    // backward: every grad tensor is written (=), none accumulated
    const dlogits = crossEntropyBackward(g, logits, flatTargets, lse, this.one, { ignoreIndex: IGNORE_INDEX }); // (N, V)
    matmul(g, dlogits, hidden, { transA: true, out: D('head.weight') }); // (V, H) = dlogitsᵀ out
    sumRows(g, dlogits, N, V, { out: D('head.bias') });
    let dout = matmul(g, dlogits, P('head.weight')); // (N, H)
    dout = { ...dout, shape: [B, T, H] };
    g.release(logits, lse, dlogits);
    for (let k = L - 1; k >= 0; k--) {
      const dx = layers[k].backward(dout, this.weightGrads(k)); // (B, T, I_k)
      g.release(dout, layers[k].out);
      dout = dx;
    }
    embeddingBackward(g, batch.idx, dout, V, { out: D('embedding.weight') });
    g.release(dout, emb);

    const r = await this.params.read(loss);
    g.release(loss);
    return r;
  }

  /**
   * Forward only (no backward, no gradients): the logits as a fresh Float32Array, (B, T, V) row-major, or with
   * `last` only each row's last position, (B, V). idx: (B, T) row-major; ids are not range-checked here.
   */
  async logits(idx: Int32Array, B: number, T: number, opts: { last?: boolean } = {}): Promise<Float32Array> {
    const batch = this.upload(idx, new Int32Array(B * T).fill(IGNORE_INDEX), B, T);
    const logits = this.forwardLogits(batch.idx, B, T, opts.last === true);
    const out = (await this.g.read(logits)) as Float32Array;
    this.g.release(logits);
    return out;
  }

  /** forward only: the mean cross entropy over targets ≠ −1 (NaN when every target is ignored), as lossAndGrads' loss */
  async loss(idx: Int32Array, targets: Int32Array, B: number, T: number): Promise<number> {
    const batch = this.upload(idx, targets, B, T);
    const logits = this.forwardLogits(batch.idx, B, T, false);
    const { loss, lse } = crossEntropy(this.g, logits, { ...batch.targets, shape: [B * T] }, { ignoreIndex: IGNORE_INDEX });
    this.g.release(logits, lse);
    const v = (await this.g.read(loss))[0];
    this.g.release(loss);
    return v;
  }

  /** records the forward up to the logits ((B·T, V), or (B, V) for each row's last position); frees its scratch */
  private forwardLogits(idx: GpuTensor, B: number, T: number, last: boolean): GpuTensor {
    const { g, config } = this;
    const { hidden_size: H, num_layers: L } = config;
    let x = embedding(g, idx, this.params.weight('embedding.weight')); // (B, T, E)
    for (let k = 0; k < L; k++) {
      const w = this.weights(k);
      let out: GpuTensor;
      if (config.model === 'rnn') {
        const r = rnnForward(g, x, undefined, w);
        releaseRnnSaved(g, r.saved);
        g.release(r.hN);
        out = r.out;
      } else if (config.model === 'lstm') {
        const r = lstmForward(g, x, undefined, undefined, w);
        releaseLstmSaved(g, r.saved);
        g.release(r.hN, r.cN);
        out = r.out;
      } else {
        const r = gruForward(g, x, undefined, w);
        releaseGruSaved(g, r.saved);
        g.release(r.hN);
        out = r.out;
      }
      g.release(x);
      x = out; // (B, T, H)
    }
    let hidden: GpuTensor = { ...x, shape: [B * T, H] };
    if (last) {
      hidden = g.tensor([B, H]);
      for (let r = 0; r < B; r++) g.copy(x, 4 * (r * T + T - 1) * H, hidden, 4 * r * H, 4 * H);
    }
    const logits = matmul(g, hidden, this.params.weight('head.weight'), { transB: true, bias: this.params.weight('head.bias') });
    g.release(x);
    if (last) g.release(hidden);
    return logits;
  }

  /** hand every buffer back to the pool */
  release(): void {
    this.params.release();
    this.g.release(this.one);
    if (this.batch) this.g.release(this.batch.idx, this.batch.targets);
    this.batch = null;
  }
}
