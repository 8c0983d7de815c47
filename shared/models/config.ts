// Model configs: one type per family, with defaults and the reason for each field (nanoGPT's GPTConfig style).
// `parseModelConfig` validates a JSON config (zod) and throws one error that lists every problem by path;
// `configJson` is the PyTorch-facing JSON stored as `config` in a checkpoint's `__metadata__`.
// Shape letters used across shared/models: V vocab, T sequence (≤ block_size), C n_embd, L n_layer,
// nh n_head, hs = C / nh head size, E embed_size, H hidden_size, G gates per hidden unit.
import { z } from 'zod';
import { ATTENTION_MAX_D } from '../reference/attention.ts';

export interface GptConfig {
  model: 'gpt';
  /** V: token ids are in [0, V). The trainer sets it from the corpus's vocabulary; 128 holds any ASCII text */
  vocab_size: number;
  /** the longest context T the model sees; sizes the position table transformer.wpe (block_size, C) */
  block_size: number;
  /** L: transformer blocks; depth costs time linearly on a 2-core machine, so a few */
  n_layer: number;
  /** nh: attention heads; must divide n_embd, and the head size n_embd / n_head must be ≤ 128 (the attention kernels hold a head row in registers) */
  n_head: number;
  /** C: the residual stream's width */
  n_embd: number;
  /** only 0 is supported: there are no dropout kernels, and a swarm's gradients must be reproducible from (weights, batch) alone */
  dropout: number;
}

export type RecurrentModel = 'rnn' | 'lstm' | 'gru';

/** as torch.nn.RNN (tanh) / LSTM / GRU with batch_first=True, between an embedding and a linear head */
export interface RecurrentConfig<M extends RecurrentModel = RecurrentModel> {
  model: M;
  /** V: token ids are in [0, V). The trainer sets it from the corpus's vocabulary; 128 holds any ASCII text */
  vocab_size: number;
  /** E: width of embedding.weight (V, E), the first layer's input size */
  embed_size: number;
  /** H: hidden units per layer; the head reads the last layer's h_t */
  hidden_size: number;
  /** stacked layers: layer k > 0 reads layer k − 1's outputs (inputs of size H) */
  num_layers: number;
}

export type RnnConfig = RecurrentConfig<'rnn'>;
export type LstmConfig = RecurrentConfig<'lstm'>;
export type GruConfig = RecurrentConfig<'gru'>;
export type ModelConfig = GptConfig | RnnConfig | LstmConfig | GruConfig;
export type ModelName = ModelConfig['model'];

export const MODELS: readonly ModelName[] = ['gpt', 'rnn', 'lstm', 'gru'];

/** small enough to train on SwiftShader on 2 cores; presets override what they need */
export const GPT_DEFAULTS: GptConfig = { model: 'gpt', vocab_size: 128, block_size: 128, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 };

export const recurrentDefaults = <M extends RecurrentModel>(model: M): RecurrentConfig<M> => ({
  model,
  vocab_size: 128,
  embed_size: 64,
  hidden_size: 256,
  num_layers: 2,
});

export const isGpt = (c: ModelConfig): c is GptConfig => c.model === 'gpt';

/** gates per hidden unit: rows of weight_ih / weight_hh are G·H (RNN 1; LSTM 4: i, f, g, o; GRU 3: r, z, n) */
export const GATES: Record<RecurrentModel, number> = { rnn: 1, lstm: 4, gru: 3 };

const size = (d: number) =>
  z
    .number({ error: 'must be a positive integer' })
    .int({ error: 'must be a positive integer' })
    .min(1, { error: 'must be a positive integer (≥ 1)' })
    .default(d);

const gptSchema = z.strictObject({
  model: z.literal('gpt'),
  vocab_size: size(GPT_DEFAULTS.vocab_size),
  block_size: size(GPT_DEFAULTS.block_size),
  n_layer: size(GPT_DEFAULTS.n_layer),
  n_head: size(GPT_DEFAULTS.n_head),
  n_embd: size(GPT_DEFAULTS.n_embd),
  dropout: z.literal(0, { error: 'only 0 is supported (there are no dropout kernels)' }).default(0),
});

const recurrentSchema = (model: RecurrentModel) => {
  const d = recurrentDefaults(model);
  return z.strictObject({
    model: z.literal(model),
    vocab_size: size(d.vocab_size),
    embed_size: size(d.embed_size),
    hidden_size: size(d.hidden_size),
    num_layers: size(d.num_layers),
  });
};

const SCHEMAS = { gpt: gptSchema, rnn: recurrentSchema('rnn'), lstm: recurrentSchema('lstm'), gru: recurrentSchema('gru') };

/** the keys of each family's config, in their documented (and exported) order */
export const CONFIG_KEYS: Record<ModelName, readonly string[]> = {
  gpt: Object.keys(GPT_DEFAULTS),
  rnn: Object.keys(recurrentDefaults('rnn')),
  lstm: Object.keys(recurrentDefaults('lstm')),
  gru: Object.keys(recurrentDefaults('gru')),
};

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const at = (obj: Record<string, unknown>, path: readonly PropertyKey[]) => path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k], obj);

/**
 * A typed config with defaults filled in, from a JSON object (or its text). Throws one Error listing every
 * problem by path, e.g. `model config: n_head: 5 does not divide n_embd 64; n_layer: must be a positive
 * integer (≥ 1), got 0`.
 */
export function parseModelConfig(json: unknown): ModelConfig {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (e) {
      throw new Error(`model config: not JSON (${(e as Error).message})`);
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`model config: must be a JSON object, got ${show(json)}`);
  const raw = json as Record<string, unknown>;
  const model = raw.model;
  if (typeof model !== 'string' || !(MODELS as readonly string[]).includes(model)) {
    throw new Error(`model config: model: must be one of ${MODELS.map((m) => `'${m}'`).join(', ')}, got ${show(model)}`);
  }
  const name = model as ModelName;
  const problems: string[] = [];
  const r = SCHEMAS[name].safeParse(raw);
  if (!r.success) {
    for (const iss of r.error.issues) {
      if (iss.code === 'unrecognized_keys') {
        for (const k of iss.keys) problems.push(`${k}: unknown key (a ${name} config has ${CONFIG_KEYS[name].join(', ')})`);
      } else {
        problems.push(`${iss.path.join('.')}: ${iss.message}, got ${show(at(raw, iss.path))}`);
      }
    }
  }
  if (name === 'gpt') {
    // cross-field checks, on whichever values are themselves valid (defaults where absent)
    const v = { ...GPT_DEFAULTS, ...raw } as Record<string, unknown>;
    const ok = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1;
    if (ok(v.n_head) && ok(v.n_embd)) {
      if (v.n_embd % v.n_head !== 0) problems.push(`n_head: ${v.n_head} does not divide n_embd ${v.n_embd}`);
      else if (v.n_embd / v.n_head > ATTENTION_MAX_D) {
        problems.push(`n_head: head size n_embd / n_head = ${v.n_embd / v.n_head} exceeds ${ATTENTION_MAX_D} (the attention kernels' limit): use more heads`);
      }
    }
  }
  if (problems.length) throw new Error(`model config: ${problems.join('; ')}`);
  return (r as { data: ModelConfig }).data;
}

/**
 * The config as checkpoint metadata: the family's keys in documented order, nothing else, so that
 * `parseModelConfig(JSON.parse(configJson(c)))` gives `c` back. For gpt the keys other than `model` are
 * nanoGPT's `GPTConfig(**...)` arguments (its `bias` defaults to True, as here); for the recurrent models
 * `embed_size`, `hidden_size`, `num_layers` are the nn.Embedding / nn.RNN|LSTM|GRU sizes.
 */
export function configJson(c: ModelConfig): string {
  const rec = c as unknown as Record<string, unknown>;
  return JSON.stringify(Object.fromEntries(CONFIG_KEYS[c.model].map((k) => [k, rec[k]])));
}
