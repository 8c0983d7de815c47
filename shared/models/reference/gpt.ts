// CPU reference GPT (float64): nanoGPT's GPT forward and backward, composed from the op references in
// shared/reference (the math lives there; this file only wires tensors between them). Pre-LN blocks:
//   x = wte[idx] + wpe[t]
//   x = x + c_proj(attn(c_attn(ln_1(x))));  x = x + mlp.c_proj(gelu_tanh(c_fc(ln_2(x))))
//   logits = ln_f(x) @ wteᵀ (tied head);  loss = mean cross entropy over targets ≠ -1
// Shapes: N = B·T rows; C, nh, hs = C / nh; V. Forward keeps what backward needs (llm.c style).
import { attentionBackward, attentionForward, type AttentionDims } from '../../reference/attention.ts';
import { crossEntropyBackward, crossEntropyForward } from '../../reference/cross_entropy.ts';
import { geluBackward, geluForward } from '../../reference/elementwise.ts';
import { embeddingBackward, embeddingForward } from '../../reference/embedding.ts';
import { layerNormBackward, layerNormForward } from '../../reference/layer_norm.ts';
import { matmulBackward, matmulForward, matmulShape } from '../../reference/matmul.ts';
import type { GptConfig } from '../config.ts';
import type { ParamLayout } from '../layout.ts';

const LN_EPS = 1e-5; // nn.LayerNorm's default, as nanoGPT

/** y (N, out) = x (N, in) @ Wᵀ + b, W (out, in) as nn.Linear */
function linear(x: Float64Array, w: Float64Array, b: Float64Array | null, N: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(N * outF);
  matmulForward(y, x, w, b, matmulShape([N, inF], [outF, inF], false, true), false, true);
  return y;
}

/** dx (N, in) returned; dw (out, in) and db (out) written into the gradient views */
function linearBackward(dy: Float64Array, x: Float64Array, w: Float64Array, dw: Float64Array, db: Float64Array | null, N: number, inF: number, outF: number): Float64Array {
  const dx = new Float64Array(N * inF);
  matmulBackward(dx, dw, db, dy, x, w, matmulShape([N, inF], [outF, inF], false, true), false, true);
  return dx;
}

/** (N, 3C) rows of [q | k | v] → q, k, v each (B, nh, T, hs), as qkv.split(C, 2) then .view(B, T, nh, hs).transpose(1, 2) */
function splitHeads(qkv: Float64Array, B: number, T: number, nh: number, hs: number) {
  const C = nh * hs;
  const q = new Float64Array(B * T * C);
  const k = new Float64Array(B * T * C);
  const v = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < hs; d++) {
          const src = (b * T + t) * 3 * C + h * hs + d;
          const dst = ((b * nh + h) * T + t) * hs + d;
          q[dst] = qkv[src];
          k[dst] = qkv[src + C];
          v[dst] = qkv[src + 2 * C];
        }
  return { q, k, v };
}

/** the inverse of splitHeads, for the gradients: dq, dk, dv (B, nh, T, hs) → dqkv (N, 3C) */
function joinQkv(dq: Float64Array, dk: Float64Array, dv: Float64Array, B: number, T: number, nh: number, hs: number): Float64Array {
  const C = nh * hs;
  const dqkv = new Float64Array(B * T * 3 * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < hs; d++) {
          const dst = (b * T + t) * 3 * C + h * hs + d;
          const src = ((b * nh + h) * T + t) * hs + d;
          dqkv[dst] = dq[src];
          dqkv[dst + C] = dk[src];
          dqkv[dst + 2 * C] = dv[src];
        }
  return dqkv;
}

/** (B, nh, T, hs) → (B, T, C) (y.transpose(1, 2).contiguous().view(B, T, C)), or back with `inverse` */
function mergeHeads(y: Float64Array, B: number, T: number, nh: number, hs: number, inverse = false): Float64Array {
  const out = new Float64Array(y.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < hs; d++) {
          const heads = ((b * nh + h) * T + t) * hs + d;
          const rows = (b * T + t) * nh * hs + h * hs + d;
          if (inverse) out[heads] = y[rows];
          else out[rows] = y[heads];
        }
  return out;
}

const add = (a: Float64Array, b: Float64Array): Float64Array => a.map((v, i) => v + b[i]);

/** what one block's forward keeps for its backward */
interface BlockActs {
  x: Float64Array; // block input (N, C)
  ln1: ReturnType<typeof layerNormForward>;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  att: Float64Array; // merged heads (N, C)
  x2: Float64Array; // x after the attention residual (N, C)
  ln2: ReturnType<typeof layerNormForward>;
  fc: Float64Array; // c_fc output before gelu (N, 4C)
  gelu: Float64Array; // (N, 4C)
}

export function gptLoss(config: GptConfig, layout: ParamLayout, params: Float64Array, idx: Int32Array, targets: Int32Array, B: number, T: number, grads?: Float64Array): number {
  const { n_embd: C, n_head: nh, vocab_size: V, n_layer: L } = config;
  const hs = C / nh;
  const N = B * T;
  const P = (name: string) => layout.view(params, name);
  const pos = Int32Array.from({ length: N }, (_, n) => n % T);
  const ad: AttentionDims = { B, H: nh, T, S: T, D: hs };
  const scale = 1 / Math.sqrt(hs);

  // forward
  const tok = new Float64Array(N * C);
  const posEmb = new Float64Array(N * C);
  embeddingForward(tok, idx, P('transformer.wte.weight'), N, C);
  embeddingForward(posEmb, pos, P('transformer.wpe.weight'), N, C);
  let x = add(tok, posEmb);
  const acts: BlockActs[] = [];
  for (let l = 0; l < L; l++) {
    const h = (n: string) => P(`transformer.h.${l}.${n}`);
    const ln1 = layerNormForward(x, h('ln_1.weight'), h('ln_1.bias'), N, C, LN_EPS);
    const qkv = linear(ln1.out, h('attn.c_attn.weight'), h('attn.c_attn.bias'), N, C, 3 * C);
    const { q, k, v } = splitHeads(qkv, B, T, nh, hs);
    const yh = new Float64Array(N * C);
    attentionForward(yh, new Float64Array(B * nh * T), q, k, v, ad, true, scale);
    const att = mergeHeads(yh, B, T, nh, hs);
    const x2 = add(x, linear(att, h('attn.c_proj.weight'), h('attn.c_proj.bias'), N, C, C));
    const ln2 = layerNormForward(x2, h('ln_2.weight'), h('ln_2.bias'), N, C, LN_EPS);
    const fc = linear(ln2.out, h('mlp.c_fc.weight'), h('mlp.c_fc.bias'), N, C, 4 * C);
    const gelu = geluForward(fc);
    acts.push({ x, ln1, q, k, v, att, x2, ln2, fc, gelu });
    x = add(x2, linear(gelu, h('mlp.c_proj.weight'), h('mlp.c_proj.bias'), N, 4 * C, C));
  }
  const lnf = layerNormForward(x, P('transformer.ln_f.weight'), P('transformer.ln_f.bias'), N, C, LN_EPS);
  const logits = linear(lnf.out, P('transformer.wte.weight'), null, N, C, V);
  const ce = crossEntropyForward(logits, targets, N, V, -1, 'mean');
  const loss = ce.out[0];
  if (!grads) return loss;

  // backward: every parameter's gradient is written once into its view, except wte (head, then embedding)
  const G = (name: string) => layout.view(grads, name);
  const dlogits = crossEntropyBackward(logits, targets, ce.lse, Float64Array.of(1), N, V, -1, 'mean');
  const dlnf = linearBackward(dlogits, lnf.out, P('transformer.wte.weight'), G('transformer.wte.weight'), null, N, C, V);
  const f = layerNormBackward(dlnf, x, P('transformer.ln_f.weight'), true, lnf.mean, lnf.rstd, N, C);
  G('transformer.ln_f.weight').set(f.dw!);
  G('transformer.ln_f.bias').set(f.db!);
  let dx: Float64Array = f.dx;
  for (let l = L - 1; l >= 0; l--) {
    const h = (n: string) => P(`transformer.h.${l}.${n}`);
    const g = (n: string) => G(`transformer.h.${l}.${n}`);
    const a = acts[l];
    // x = x2 + mlp(ln_2(x2)): dx flows to x2 directly and through the MLP
    const dgelu = linearBackward(dx, a.gelu, h('mlp.c_proj.weight'), g('mlp.c_proj.weight'), g('mlp.c_proj.bias'), N, 4 * C, C);
    const dfc = geluBackward(a.fc, dgelu);
    const dln2 = linearBackward(dfc, a.ln2.out, h('mlp.c_fc.weight'), g('mlp.c_fc.weight'), g('mlp.c_fc.bias'), N, C, 4 * C);
    const n2 = layerNormBackward(dln2, a.x2, h('ln_2.weight'), true, a.ln2.mean, a.ln2.rstd, N, C);
    g('ln_2.weight').set(n2.dw!);
    g('ln_2.bias').set(n2.db!);
    const dx2 = add(dx, n2.dx);
    // x2 = x + attn(ln_1(x))
    const datt = linearBackward(dx2, a.att, h('attn.c_proj.weight'), g('attn.c_proj.weight'), g('attn.c_proj.bias'), N, C, C);
    const dq = new Float64Array(N * C);
    const dk = new Float64Array(N * C);
    const dv = new Float64Array(N * C);
    attentionBackward(dq, dk, dv, mergeHeads(datt, B, T, nh, hs, true), a.q, a.k, a.v, ad, true, scale);
    const dln1 = linearBackward(joinQkv(dq, dk, dv, B, T, nh, hs), a.ln1.out, h('attn.c_attn.weight'), g('attn.c_attn.weight'), g('attn.c_attn.bias'), N, C, 3 * C);
    const n1 = layerNormBackward(dln1, a.x, h('ln_1.weight'), true, a.ln1.mean, a.ln1.rstd, N, C);
    g('ln_1.weight').set(n1.dw!);
    g('ln_1.bias').set(n1.db!);
    dx = add(dx2, n1.dx);
  }
  const dwte = new Float64Array(V * C);
  embeddingBackward(dwte, idx, dx, N, C, -1);
  const gw = G('transformer.wte.weight');
  for (let i = 0; i < gw.length; i++) gw[i] += dwte[i];
  embeddingBackward(G('transformer.wpe.weight'), pos, dx, N, C, -1); // rows ≥ T get 0
  return loss;
}
