// The same language models as client/models/{gpt,recurrent}.ts written with @tensorflow/tfjs ops, for
// `gradswarm bench train`: one tf.Variable per parameter under its PyTorch name and shape (the flat layout of
// shared/models/layout.ts, so the parameter counts match by construction and are checked), started from the same
// weights as ours, trained with tf.variableGrads, global-norm clipping on the GPU and tf.train.adam. Browser only.
//   gpt: nanoGPT: x = wte[idx] + wpe[t]; pre-LN blocks with causal attention (scores masked, softmax) and a
//        gelu MLP (tanh approximation, as ours); ln_f; tied head (logits = x wteᵀ); mean softmax cross entropy.
//   rnn / lstm / gru: embedding → stacked layers from zero state, unrolled over T with PyTorch's gate layout
//        (bench/cases.ts tfRecurrent, the recurrent rows of the kernel bench) → linear head → cross entropy.
// tfjs has no AdamW: its Adam skips the decoupled weight decay ours applies to matmul weights (an elementwise
// multiply per weight, negligible next to a step).
import type * as TF from '@tensorflow/tfjs-core';
import { isGpt, type GptConfig, type ModelConfig, type RecurrentConfig } from '../shared/models/config.ts';
import { paramLayout } from '../shared/models/layout.ts';
import type { OptimConfig } from '../shared/train/schedule.ts';
import { tfRecurrent, type TfLib } from './cases.ts';

const LN_EPS = 1e-5;
const GELU_S = Math.sqrt(2 / Math.PI);

export interface TfjsTrainer {
  /** elements over every variable: must equal our layout's size */
  numParams: number;
  /** one step on a batch (idx, targets: (B, T) row-major): loss, grads, clip, Adam; resolves with the loss once the GPU is done */
  step(idx: Int32Array, targets: Int32Array, B: number, T: number, lr: number): Promise<number>;
  dispose(): void;
}

type WebGpuBackend = { commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice };

/** tfjs records into a command encoder and submits every few dispatches: submit the rest, then wait */
async function tfjsSync(tf: TfLib): Promise<void> {
  const b = tf.backend() as unknown as WebGpuBackend;
  if (b.commandEncoder) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  await b.device.queue.onSubmittedWorkDone();
}

// tfjs does not look at WebGPU validation errors: an invalid pipeline silently drops its whole command buffer (a step
// that computes nothing). Collect them from the device and fail the step.
const deviceErrors = new WeakMap<GPUDevice, string[]>();
function errorsOf(tf: TfLib): string[] {
  const device = (tf.backend() as unknown as WebGpuBackend).device;
  let list = deviceErrors.get(device);
  if (!list) {
    deviceErrors.set(device, (list = []));
    device.addEventListener('uncapturederror', (ev) => list!.push((ev as GPUUncapturedErrorEvent).error.message));
  }
  return list;
}

function gptLoss(tf: TfLib, c: GptConfig, P: (n: string) => TF.Tensor, idx: TF.Tensor, targets: TF.Tensor, B: number, T: number): TF.Scalar {
  const { n_embd: C, n_head: nh, n_layer: L, vocab_size: V } = c;
  const N = B * T;
  const hs = C / nh;
  const ln = (x: TF.Tensor, name: string) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))), P(`${name}.weight`)), P(`${name}.bias`));
  };
  const linear = (x: TF.Tensor, name: string) => tf.add(tf.matMul(x as TF.Tensor2D, P(`${name}.weight`) as TF.Tensor2D, false, true), P(`${name}.bias`));
  const heads = (x: TF.Tensor) => tf.transpose(tf.reshape(x, [B, T, nh, hs]), [0, 2, 1, 3]); // (B, nh, T, hs)
  // additive causal mask (T, T): 0 on and below the diagonal, -1e9 above
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
  let x = tf.reshape(tf.add(tf.reshape(tf.gather(P('transformer.wte.weight'), tf.reshape(idx, [N])), [B, T, C]), tf.slice(P('transformer.wpe.weight'), [0, 0], [T, C])), [N, C]);
  for (let l = 0; l < L; l++) {
    const b = `transformer.h.${l}`;
    const [q, k, v] = tf.split(linear(ln(x, `${b}.ln_1`), `${b}.attn.c_attn`), 3, 1).map(heads);
    const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), mask)); // (B, nh, T, T)
    const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [N, C]);
    x = tf.add(x, linear(y, `${b}.attn.c_proj`));
    const h = linear(ln(x, `${b}.ln_2`), `${b}.mlp.c_fc`);
    const gelu = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(h, tf.mul(tf.pow(h, 3), 0.044715)), GELU_S))));
    x = tf.add(x, linear(gelu, `${b}.mlp.c_proj`));
  }
  const logits = tf.matMul(ln(x, 'transformer.ln_f') as TF.Tensor2D, P('transformer.wte.weight') as TF.Tensor2D, false, true); // (N, V), tied head
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [N]) as TF.Tensor1D, V), logits) as TF.Scalar;
}

function recurrentLoss(tf: TfLib, c: RecurrentConfig, P: (n: string) => TF.Tensor, idx: TF.Tensor, targets: TF.Tensor, B: number, T: number): TF.Scalar {
  const { embed_size: E, hidden_size: H, num_layers: L, vocab_size: V } = c;
  const N = B * T;
  let x = tf.reshape(tf.gather(P('embedding.weight'), tf.reshape(idx, [N])), [B, T, E]);
  const h0 = tf.zeros([1, B, H]);
  for (let k = 0; k < L; k++) {
    const w = (n: string) => P(`rnn.${n}_l${k}`);
    const inputs = { x, h0, c0: h0, weight_ih_l0: w('weight_ih'), weight_hh_l0: w('weight_hh'), bias_ih_l0: w('bias_ih'), bias_hh_l0: w('bias_hh') };
    x = tfRecurrent(tf, c.model, inputs, B, T, k === 0 ? E : H, H); // (B, T, H)
  }
  const logits = tf.add(tf.matMul(tf.reshape(x, [N, H]) as TF.Tensor2D, P('head.weight') as TF.Tensor2D, false, true), P('head.bias'));
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [N]) as TF.Tensor1D, V), logits) as TF.Scalar;
}

/** the model of `config` with weights from `flat` (our layout), and an Adam with the run's betas, eps and clipping */
export function tfjsTrainer(tf: TfLib, config: ModelConfig, flat: Float32Array, optim: Pick<OptimConfig, 'betas' | 'eps' | 'grad_clip'>): TfjsTrainer {
  const layout = paramLayout(config);
  const vars = new Map<string, TF.Variable>();
  // variable names are global in tfjs: prefixed with the family, and disposed before the next model of it
  for (const p of layout.params) vars.set(p.name, tf.variable(tf.tensor(layout.view(flat, p.name), p.shape), true, `${config.model}/${p.name}`));
  const P = (n: string) => {
    const v = vars.get(n);
    if (!v) throw new Error(`tfjs ${config.model} model: no variable '${n}'`);
    return v;
  };
  const numParams = [...vars.values()].reduce((s, v) => s + v.size, 0);
  let adam: TF.AdamOptimizer | null = null;
  let lastLr = NaN;
  const loss = (idx: TF.Tensor, targets: TF.Tensor, B: number, T: number) =>
    isGpt(config) ? gptLoss(tf, config, P, idx, targets, B, T) : recurrentLoss(tf, config as RecurrentConfig, P, idx, targets, B, T);

  return {
    numParams,
    async step(idx, targets, B, T, lr) {
      if (lr !== lastLr) {
        // Adam's learning rate is fixed at construction: a schedule would need one per value (the bench keeps lr fixed)
        adam?.dispose();
        adam = tf.train.adam(lr, optim.betas[0], optim.betas[1], optim.eps);
        lastLr = lr;
      }
      const errors = errorsOf(tf);
      const ti = tf.tensor2d(idx, [B, T], 'int32');
      const tt = tf.tensor2d(targets, [B, T], 'int32');
      const { value, grads } = tf.variableGrads(() => loss(ti, tt, B, T));
      // torch.nn.utils.clip_grad_norm_ on the GPU: scale = min(1, clip / (‖g‖ + 1e-6))
      const clipped = tf.tidy(() => {
        if (!optim.grad_clip) return grads;
        // pairwise adds: tf.addN binds every input at once, past the device's 8 storage buffers per stage
        const norm = tf.sqrt(Object.values(grads).map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)));
        const scale = tf.minimum(1, tf.div(optim.grad_clip, tf.add(norm, 1e-6)));
        return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, scale)]));
      });
      adam!.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
      const l = (await value.data())[0];
      await tfjsSync(tf);
      tf.dispose([ti, tt, value, ...Object.values(grads), ...(clipped === grads ? [] : Object.values(clipped))]);
      if (errors.length) throw new Error(`tfjs ${config.model} step: WebGPU reported ${errors.length} error(s): ${errors.splice(0).slice(0, 3).join(' | ')}`);
      return l;
    },
    dispose() {
      adam?.dispose();
      tf.dispose([...vars.values()]);
    },
  };
}
