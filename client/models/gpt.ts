// The GPT language model on the GPU kernels, as the CPU reference (shared/models/reference/gpt.ts) and nanoGPT:
//   x = wte[idx] + wpe[t]                                                   (N, C), N = B·T
//   per block: x = x + c_proj(attn(c_attn(ln_1 x)));  x = x + mlp.c_proj(gelu(c_fc(ln_2 x)))
//   logits = ln_f(x) @ wteᵀ (tied head, (N, V));  loss = mean cross entropy over targets ≠ −1
// Activations are (N, C)-row matrices; attention takes q, k, v as (B, nh, T, hs), permuted by the layout
// kernels (shaders/layout.wgsl). A step records forward and backward in one go (one submit), gathers the
// per-tensor grads and the loss into one flat buffer with recorded copies, and reads that back once (a second
// submit: the readback copy). Activations and scratch come from the Gpu's buffer pool and are all released at
// the end of the step, so from the second step with the same (B, T) on every acquire is a hit and nothing is
// allocated. Every grad tensor is written (=) once, except wte's: the head writes it, the embedding adds.
import type { GptConfig } from '../../shared/models/config.ts';
import { attention, attentionBackward } from '../ops/attention.ts';
import { crossEntropy, crossEntropyBackward } from '../ops/cross_entropy.ts';
import { add, gelu, geluBackward } from '../ops/elementwise.ts';
import { embedding, embeddingBackward } from '../ops/embedding.ts';
import { layerNorm, layerNormBackward } from '../ops/layer_norm.ts';
import { matmul, sumRows } from '../ops/matmul.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { GpuParams } from './params.ts';

const IGNORE_INDEX = -1;
const LN_EPS = 1e-5; // nn.LayerNorm's default, as nanoGPT
const WG = 256; // layout.wgsl's workgroup size

interface Dims {
  B: number;
  T: number;
  nh: number;
  hs: number;
}

/** what one block's forward keeps for its backward (all (N, ·) rows unless noted) */
interface BlockActs {
  x: GpuTensor; // block input (N, C)
  ln1: { out: GpuTensor; mean: GpuTensor; rstd: GpuTensor };
  q: GpuTensor; // (B, nh, T, hs)
  k: GpuTensor;
  v: GpuTensor;
  att: { out: GpuTensor; lse: GpuTensor }; // (B, nh, T, hs), (B, nh, T)
  y: GpuTensor; // merged heads (N, C)
  x2: GpuTensor; // x after the attention residual (N, C)
  ln2: { out: GpuTensor; mean: GpuTensor; rstd: GpuTensor };
  fc: GpuTensor; // c_fc output before gelu (N, 4C)
  h: GpuTensor; // gelu(fc) (N, 4C)
}

export class GptModel {
  readonly params: GpuParams;
  /** dL/dloss = 1, the seed of backward (written once) */
  private readonly one: GpuTensor;
  /** bindings rows_to_heads never touches for a single part (writable bindings must not alias) */
  private readonly spare: [GpuTensor, GpuTensor];
  /** idx, targets and positions t (N) i32, kept while (B, T) stays the same */
  private batch: { B: number; T: number; idx: GpuTensor; targets: GpuTensor; pos: GpuTensor } | null = null;

  constructor(
    private readonly g: Gpu,
    readonly config: GptConfig,
  ) {
    this.params = new GpuParams(g, config);
    this.one = g.tensor([]);
    g.fill(this.one, 1);
    this.spare = [g.tensor([1]), g.tensor([1])];
  }

  /** upload the parameters from a flat Float32Array in the layout */
  setParams(flat: Float32Array): void {
    this.params.set(flat);
  }

  private upload(idx: Int32Array, targets: Int32Array, B: number, T: number) {
    const N = B * T;
    if (idx.length !== N || targets.length !== N) throw new Error(`batch: idx has ${idx.length} and targets ${targets.length} elements, but (B, T) = (${B}, ${T}) needs ${N} each`);
    if (T > this.config.block_size) throw new Error(`batch: T = ${T} exceeds block_size ${this.config.block_size}`);
    if (!this.batch || this.batch.B !== B || this.batch.T !== T) {
      if (this.batch) this.g.release(this.batch.idx, this.batch.targets, this.batch.pos);
      const pos = this.g.upload({ shape: [N], data: Int32Array.from({ length: N }, (_, n) => n % T) }, 'positions');
      this.batch = { B, T, idx: this.g.tensor([N], 'i32', 'idx'), targets: this.g.tensor([N], 'i32', 'targets'), pos };
    }
    this.g.flush(); // queue writes land at once: submit what is recorded before them first
    this.g.device.queue.writeBuffer(this.batch.idx.buffer, 0, idx.buffer, idx.byteOffset, idx.byteLength);
    this.g.device.queue.writeBuffer(this.batch.targets.buffer, 0, targets.buffer, targets.byteOffset, targets.byteLength);
    return this.batch;
  }

  /** (N, P·C) rows → P tensors (B, nh, T, hs): qkv.split(C, 2), .view(B, T, nh, hs).transpose(1, 2) */
  private rowsToHeads(rows: GpuTensor, P: 1 | 3, d: Dims): GpuTensor[] {
    const shape = [d.B, d.nh, d.T, d.hs];
    const heads = Array.from({ length: P }, () => this.g.tensor(shape));
    const [h0, h1 = this.spare[0], h2 = this.spare[1]] = heads;
    this.layoutRun('rows_to_heads', [rows, h0, h1, h2], P, d);
    return heads;
  }

  /** P tensors (B, nh, T, hs) → (N, P·C) rows: the inverse of rowsToHeads (y.transpose(1, 2).view(B, T, C)) */
  private headsToRows(heads: GpuTensor[], d: Dims): GpuTensor {
    const P = heads.length;
    const rows = this.g.tensor([d.B * d.T, P * d.nh * d.hs]);
    const [h0, h1 = h0, h2 = h0] = heads;
    this.layoutRun('heads_to_rows', [h0, h1, h2, rows], P, d);
    return rows;
  }

  private layoutRun(kernel: string, buffers: GpuTensor[], P: number, d: Dims): void {
    const n = d.B * d.T * d.nh * d.hs;
    this.g.run({ kernel, u32: [d.B, d.T, d.nh, d.hs, P], buffers, workgroups: this.g.grid(Math.ceil(n / WG)) });
  }

  /**
   * Mean cross entropy over targets ≠ −1 (NaN when every target is ignored) and its gradient for every
   * parameter, as a fresh Float32Array in the flat layout. idx, targets: (B, T) row-major, T ≤ block_size.
   * Ids are not range-checked here (the GPU functions do not read them back): check batches on the host first.
   */
  async lossAndGrads(idx: Int32Array, targets: Int32Array, B: number, T: number): Promise<{ loss: number; grads: Float32Array }> {
    const { g, config } = this;
    const { vocab_size: V, n_embd: C, n_head: nh, n_layer: L, block_size } = config;
    const N = B * T;
    const d: Dims = { B, T, nh, hs: C / nh };
    const batch = this.upload(idx, targets, B, T);
    const P = (n: string) => this.params.weight(n);
    const D = (n: string) => this.params.grad(n);
    const temps: GpuTensor[] = []; // everything this step acquires, released at its end
    const keep = <A extends GpuTensor | GpuTensor[]>(a: A): A => (temps.push(...(Array.isArray(a) ? a : [a])), a);
    const ln = (x: GpuTensor, name: string) => {
      const r = layerNorm(g, x, P(`${name}.weight`), P(`${name}.bias`), LN_EPS);
      keep([r.out, r.mean, r.rstd]);
      return r;
    };
    /** y (N, out) = x (N, in) Wᵀ + b, W (out, in) as nn.Linear */
    const linear = (x: GpuTensor, name: string) => keep(matmul(g, x, P(`${name}.weight`), { transB: true, bias: P(`${name}.bias`) }));
    /** dx (N, in) = dy W; dW = dyᵀ x and db = Σ_rows dy written into the grads */
    const linearBackward = (dy: GpuTensor, x: GpuTensor, name: string) => {
      matmul(g, dy, x, { transA: true, out: D(`${name}.weight`) });
      sumRows(g, dy, N, dy.shape[1], { out: D(`${name}.bias`) });
      return keep(matmul(g, dy, P(`${name}.weight`)));
    };

    // forward
    let x = keep(add(g, keep(embedding(g, batch.idx, P('transformer.wte.weight'))), keep(embedding(g, batch.pos, P('transformer.wpe.weight'))))); // (N, C)
    const acts: BlockActs[] = [];
    for (let l = 0; l < L; l++) {
      const b = `transformer.h.${l}`;
      const ln1 = ln(x, `${b}.ln_1`);
      const [q, k, v] = keep(this.rowsToHeads(linear(ln1.out, `${b}.attn.c_attn`), 3, d)); // (B, nh, T, hs) each
      const att = attention(g, q, k, v, { isCausal: true });
      keep([att.out, att.lse]);
      const y = keep(this.headsToRows([att.out], d)); // (N, C)
      const x2 = keep(add(g, x, linear(y, `${b}.attn.c_proj`)));
      const ln2 = ln(x2, `${b}.ln_2`);
      const fc = linear(ln2.out, `${b}.mlp.c_fc`); // (N, 4C)
      const h = keep(gelu(g, fc));
      acts.push({ x, ln1, q, k, v, att, y, x2, ln2, fc, h });
      x = keep(add(g, x2, linear(h, `${b}.mlp.c_proj`)));
    }
    const lnf = ln(x, 'transformer.ln_f');
    const logits = keep(matmul(g, lnf.out, P('transformer.wte.weight'), { transB: true })); // (N, V)
    const { loss, lse } = crossEntropy(g, logits, batch.targets, { ignoreIndex: IGNORE_INDEX });
    keep(lse);

    // backward
    const dlogits = keep(crossEntropyBackward(g, logits, batch.targets, lse, this.one, { ignoreIndex: IGNORE_INDEX })); // (N, V)
    matmul(g, dlogits, lnf.out, { transA: true, out: D('transformer.wte.weight') }); // (V, C) = dlogitsᵀ ln_f(x)
    const dlnf = keep(matmul(g, dlogits, P('transformer.wte.weight'))); // (N, C)
    const lnGrads = (name: string) => ({ dw: D(`${name}.weight`), db: D(`${name}.bias`) });
    let dx = keep(layerNormBackward(g, x, P('transformer.ln_f.weight'), true, lnf.mean, lnf.rstd, dlnf, lnGrads('transformer.ln_f')).dx);
    for (let l = L - 1; l >= 0; l--) {
      const b = `transformer.h.${l}`;
      const a = acts[l];
      // x = x2 + mlp(ln_2(x2)): dx flows to x2 directly and through the MLP
      const dh = linearBackward(dx, a.h, `${b}.mlp.c_proj`);
      const dfc = keep(geluBackward(g, a.fc, dh));
      const dln2 = linearBackward(dfc, a.ln2.out, `${b}.mlp.c_fc`);
      const n2 = keep(layerNormBackward(g, a.x2, P(`${b}.ln_2.weight`), true, a.ln2.mean, a.ln2.rstd, dln2, lnGrads(`${b}.ln_2`)).dx);
      const dx2 = keep(add(g, dx, n2));
      // x2 = x + attn(ln_1(x))
      const dy = linearBackward(dx2, a.y, `${b}.attn.c_proj`);
      const [dyh] = keep(this.rowsToHeads(dy, 1, d));
      const r = attentionBackward(g, a.q, a.k, a.v, a.att.out, a.att.lse, dyh, { isCausal: true });
      const dqkv = keep(this.headsToRows(keep([r.dq, r.dk, r.dv]), d)); // (N, 3C)
      const dln1 = linearBackward(dqkv, a.ln1.out, `${b}.attn.c_attn`);
      const n1 = keep(layerNormBackward(g, a.x, P(`${b}.ln_1.weight`), true, a.ln1.mean, a.ln1.rstd, dln1, lnGrads(`${b}.ln_1`)).dx);
      dx = keep(add(g, dx2, n1));
    }
    embeddingBackward(g, batch.idx, dx, V, { out: D('transformer.wte.weight'), accumulate: true });
    // wpe's grad: row t sums dx over the batch, one column sum of dx as (B, T·C); rows ≥ T are zero
    const dwpe = D('transformer.wpe.weight');
    if (T < block_size) g.fill(dwpe, 0);
    sumRows(g, dx, B, T * C, { out: { ...dwpe, shape: [T * C] } });

    g.release(...temps);
    const out = await this.params.read(loss);
    g.release(loss);
    return out;
  }

  /**
   * Forward only (no backward, no gradients): the logits as a fresh Float32Array, (B, T, V) row-major, or with
   * `last` only each row's last position, (B, V). idx: (B, T) row-major, T ≤ block_size; ids are not
   * range-checked here (check on the host first).
   */
  async logits(idx: Int32Array, B: number, T: number, opts: { last?: boolean } = {}): Promise<Float32Array> {
    const temps: GpuTensor[] = [];
    const batch = this.upload(idx, new Int32Array(B * T).fill(IGNORE_INDEX), B, T);
    const logits = this.forwardLogits(batch, B, T, temps, opts.last === true);
    this.g.release(...temps);
    const out = (await this.g.read(logits)) as Float32Array;
    this.g.release(logits);
    return out;
  }

  /** forward only: the mean cross entropy over targets ≠ −1 (NaN when every target is ignored), as lossAndGrads' loss */
  async loss(idx: Int32Array, targets: Int32Array, B: number, T: number): Promise<number> {
    const temps: GpuTensor[] = [];
    const batch = this.upload(idx, targets, B, T);
    const logits = this.forwardLogits(batch, B, T, temps, false);
    const { loss, lse } = crossEntropy(this.g, logits, batch.targets, { ignoreIndex: IGNORE_INDEX });
    this.g.release(...temps, logits, lse);
    const v = (await this.g.read(loss))[0];
    this.g.release(loss);
    return v;
  }

  /** records the forward up to the logits ((N, V), or (B, V) for each row's last position); scratch goes into temps */
  private forwardLogits(batch: { idx: GpuTensor; pos: GpuTensor }, B: number, T: number, temps: GpuTensor[], last: boolean): GpuTensor {
    const { g, config } = this;
    const { n_embd: C, n_head: nh, n_layer: L } = config;
    const d: Dims = { B, T, nh, hs: C / nh };
    const P = (n: string) => this.params.weight(n);
    const keep = <A extends GpuTensor | GpuTensor[]>(a: A): A => (temps.push(...(Array.isArray(a) ? a : [a])), a);
    const ln = (x: GpuTensor, name: string) => {
      const r = layerNorm(g, x, P(`${name}.weight`), P(`${name}.bias`), LN_EPS);
      keep([r.out, r.mean, r.rstd]);
      return r.out;
    };
    const linear = (x: GpuTensor, name: string) => keep(matmul(g, x, P(`${name}.weight`), { transB: true, bias: P(`${name}.bias`) }));
    let x = keep(add(g, keep(embedding(g, batch.idx, P('transformer.wte.weight'))), keep(embedding(g, batch.pos, P('transformer.wpe.weight')))));
    for (let l = 0; l < L; l++) {
      const b = `transformer.h.${l}`;
      const [q, k, v] = keep(this.rowsToHeads(linear(ln(x, `${b}.ln_1`), `${b}.attn.c_attn`), 3, d));
      const att = attention(g, q, k, v, { isCausal: true });
      keep([att.out, att.lse]);
      const y = keep(this.headsToRows([att.out], d));
      const x2 = keep(add(g, x, linear(y, `${b}.attn.c_proj`)));
      const h = keep(gelu(g, linear(ln(x2, `${b}.ln_2`), `${b}.mlp.c_fc`)));
      x = keep(add(g, x2, linear(h, `${b}.mlp.c_proj`)));
    }
    let hidden = ln(x, 'transformer.ln_f'); // (N, C)
    if (last) {
      const rows = keep(g.tensor([B, C]));
      for (let r = 0; r < B; r++) g.copy(hidden, 4 * (r * T + T - 1) * C, rows, 4 * r * C, 4 * C);
      hidden = rows;
    }
    return matmul(g, hidden, P('transformer.wte.weight'), { transB: true }); // (rows, V), tied head
  }

  /** hand every buffer back to the pool */
  release(): void {
    this.params.release();
    this.g.release(this.one, ...this.spare);
    if (this.batch) this.g.release(this.batch.idx, this.batch.targets, this.batch.pos);
    this.batch = null;
  }
}
