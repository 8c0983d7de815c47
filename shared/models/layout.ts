// The flat parameter layout of a model (llm.c style): every parameter is a named slice of one Float32Array,
// in PyTorch state_dict order, with PyTorch's names and shapes, so a checkpoint loads there without
// conversion. Gradients (and optimizer state) use the same layout. Identical on CPU, GPU and the wire.
//
// gpt (nanoGPT's GPT; linear weights are nn.Linear's (out, in)):
//   transformer.wte.weight (V, C), transformer.wpe.weight (block_size, C), then for each block i:
//   transformer.h.{i}.ln_1.{weight,bias} (C), .attn.c_attn.weight (3C, C), .attn.c_attn.bias (3C),
//   .attn.c_proj.weight (C, C), .attn.c_proj.bias (C), .ln_2.{weight,bias} (C), .mlp.c_fc.weight (4C, C),
//   .mlp.c_fc.bias (4C), .mlp.c_proj.weight (C, 4C), .mlp.c_proj.bias (C); then transformer.ln_f.{weight,bias} (C).
//   lm_head.weight (V, C) is tied to transformer.wte.weight: no slice of its own, emitted by toStateDict.
// rnn / lstm / gru (G = 1 / 4 / 3; I_0 = E, I_k = H for k > 0):
//   embedding.weight (V, E), then for each layer k: rnn.weight_ih_l{k} (G·H, I_k), rnn.weight_hh_l{k} (G·H, H),
//   rnn.bias_ih_l{k} (G·H), rnn.bias_hh_l{k} (G·H); then head.weight (V, H), head.bias (V).
import { numel, shapeStr, type FloatArray, type HostTensor } from '../tensor.ts';
import { GATES, isGpt, type ModelConfig } from './config.ts';

export interface ParamSpec {
  /** PyTorch state_dict name */
  name: string;
  /** PyTorch shape (nn.Linear weights are (out, in)) */
  shape: number[];
  /** first element in the flat array */
  offset: number;
  numel: number;
  /** AdamW weight decay applies: false for biases, norms and embeddings */
  decay: boolean;
}

/** the tied LM head of gpt: a state_dict entry that is transformer.wte.weight itself */
export const TIED: Record<string, string> = { 'lm_head.weight': 'transformer.wte.weight' };

// state_dict entries that PyTorch may carry but that are not parameters: nanoGPT's causal-mask buffer
// (present when it runs without flash attention). Accepted and ignored on load.
const IGNORED = /^transformer\.h\.\d+\.attn\.bias$/;

type Entry = [name: string, shape: number[], decay: boolean];

function gptEntries(c: Extract<ModelConfig, { model: 'gpt' }>): Entry[] {
  const C = c.n_embd;
  const e: Entry[] = [
    ['transformer.wte.weight', [c.vocab_size, C], false],
    ['transformer.wpe.weight', [c.block_size, C], false],
  ];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    e.push(
      [`${p}.ln_1.weight`, [C], false],
      [`${p}.ln_1.bias`, [C], false],
      [`${p}.attn.c_attn.weight`, [3 * C, C], true],
      [`${p}.attn.c_attn.bias`, [3 * C], false],
      [`${p}.attn.c_proj.weight`, [C, C], true],
      [`${p}.attn.c_proj.bias`, [C], false],
      [`${p}.ln_2.weight`, [C], false],
      [`${p}.ln_2.bias`, [C], false],
      [`${p}.mlp.c_fc.weight`, [4 * C, C], true],
      [`${p}.mlp.c_fc.bias`, [4 * C], false],
      [`${p}.mlp.c_proj.weight`, [C, 4 * C], true],
      [`${p}.mlp.c_proj.bias`, [C], false],
    );
  }
  e.push(['transformer.ln_f.weight', [C], false], ['transformer.ln_f.bias', [C], false]);
  return e;
}

function recurrentEntries(c: Exclude<ModelConfig, { model: 'gpt' }>): Entry[] {
  const { vocab_size: V, embed_size: E, hidden_size: H } = c;
  const GH = GATES[c.model] * H;
  const e: Entry[] = [['embedding.weight', [V, E], false]];
  for (let k = 0; k < c.num_layers; k++) {
    e.push(
      [`rnn.weight_ih_l${k}`, [GH, k === 0 ? E : H], true],
      [`rnn.weight_hh_l${k}`, [GH, H], true],
      [`rnn.bias_ih_l${k}`, [GH], false],
      [`rnn.bias_hh_l${k}`, [GH], false],
    );
  }
  e.push(['head.weight', [V, H], true], ['head.bias', [V], false]);
  return e;
}

export class ParamLayout {
  readonly params: readonly ParamSpec[];
  /** total elements of the flat parameter (and gradient) array */
  readonly size: number;
  private readonly byName: Map<string, ParamSpec>;

  constructor(readonly config: ModelConfig) {
    const entries = isGpt(config) ? gptEntries(config) : recurrentEntries(config);
    let offset = 0;
    this.params = entries.map(([name, shape, decay]) => {
      const p = { name, shape, offset, numel: numel(shape), decay };
      offset += p.numel;
      return p;
    });
    this.size = offset;
    this.byName = new Map(this.params.map((p) => [p.name, p]));
  }

  /** the parameter's spec; throws naming the layout's family for an unknown name */
  spec(name: string): ParamSpec {
    const p = this.byName.get(TIED[name] ?? name);
    if (!p) throw new Error(`${this.config.model} layout has no parameter '${name}'`);
    return p;
  }

  has(name: string): boolean {
    return this.byName.has(TIED[name] ?? name);
  }

  /** the parameter's slice of a flat array in this layout (params, grads, optimizer moments): a view, not a copy */
  view<A extends FloatArray>(flat: A, name: string): A {
    this.checkSize(flat);
    const p = this.spec(name);
    return flat.subarray(p.offset, p.offset + p.numel) as A;
  }

  /** PyTorch state_dict order, each tensor a copy; gpt's tied lm_head.weight is emitted (last, as nanoGPT does) */
  toStateDict(flat: Float32Array): Record<string, HostTensor> {
    this.checkSize(flat);
    const out: Record<string, HostTensor> = {};
    for (const p of this.params) out[p.name] = { shape: [...p.shape], data: flat.slice(p.offset, p.offset + p.numel) };
    if (isGpt(this.config)) {
      const wte = out['transformer.wte.weight'];
      out['lm_head.weight'] = { shape: [...wte.shape], data: wte.data.slice() };
    }
    return out;
  }

  /**
   * A flat Float32Array from name → tensor (float data; Float64Array is rounded to fp32). Throws one error
   * listing every missing, unexpected or misshapen tensor. A tied lm_head.weight may be present and must then
   * equal transformer.wte.weight; a `_orig_mod.` prefix (torch.compile) is stripped; nanoGPT's attn.bias
   * mask buffers are ignored.
   */
  fromStateDict(tensors: Record<string, HostTensor>): Float32Array {
    const flat = new Float32Array(this.size);
    const problems: string[] = [];
    const seen = new Set<string>();
    const tied: [name: string, rawName: string, t: HostTensor][] = [];
    for (const [rawName, t] of Object.entries(tensors)) {
      const name = rawName.startsWith('_orig_mod.') ? rawName.slice('_orig_mod.'.length) : rawName;
      if (IGNORED.test(name) && isGpt(this.config)) continue;
      const target = TIED[name] && isGpt(this.config) ? TIED[name] : name;
      const p = this.byName.get(target);
      if (!p) {
        problems.push(`unexpected tensor '${rawName}' (not a parameter of this ${this.config.model} model)`);
        continue;
      }
      if (shapeStr(t.shape) !== shapeStr(p.shape)) {
        problems.push(`'${rawName}' has shape ${shapeStr(t.shape)} but this ${this.config.model} config needs ${shapeStr(p.shape)}`);
        if (target === name) seen.add(name); // reported once, not again as missing
        continue;
      }
      if (t.data instanceof Int32Array) {
        problems.push(`'${rawName}' holds integers: a parameter must be a float tensor`);
        if (target === name) seen.add(name); // reported once, not again as missing
        continue;
      }
      if (t.data.length !== p.numel) {
        problems.push(`'${rawName}' has ${t.data.length} elements for shape ${shapeStr(t.shape)}`);
        if (target === name) seen.add(name); // reported once, not again as missing
        continue;
      }
      if (target !== name) {
        tied.push([name, rawName, t]);
        continue;
      }
      flat.set(t.data, p.offset);
      seen.add(name);
    }
    for (const p of this.params) if (!seen.has(p.name)) problems.push(`missing tensor '${p.name}' ${shapeStr(p.shape)}`);
    if (!problems.length) {
      for (const [name, rawName, t] of tied) {
        const own = this.view(flat, TIED[name]);
        const theirs = Float32Array.from(t.data);
        if (theirs.some((v, i) => !Object.is(v, own[i]))) {
          problems.push(`'${rawName}' differs from '${TIED[name]}': this model ties them (the LM head is the token embedding)`);
        }
      }
    }
    if (problems.length) throw new Error(`state dict for ${this.config.model}: ${problems.join('; ')}`);
    return flat;
  }

  private checkSize(flat: FloatArray): void {
    if (flat.length !== this.size) throw new Error(`${this.config.model} layout holds ${this.size} elements but the array has ${flat.length}`);
  }
}

/** the layout of a config (cheap: a list of a few dozen slices) */
export const paramLayout = (config: ModelConfig): ParamLayout => new ParamLayout(config);
