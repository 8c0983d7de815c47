// Seeded initial parameters in the flat layout: the same seed gives the same weights in Node and in every
// browser (shared/rng.ts), drawn parameter by parameter in layout order.
// gpt: GPT-2 / nanoGPT's _init_weights: linear weights and both embeddings normal(0, 0.02); the residual
//   projections (attn.c_proj.weight, mlp.c_proj.weight) normal(0, 0.02 / sqrt(2·n_layer)), so the residual
//   stream's variance does not grow with depth; biases 0; LayerNorm weight 1, bias 0.
// rnn / lstm / gru: PyTorch's defaults: nn.Embedding normal(0, 1); nn.RNN/LSTM/GRU weights and biases
//   uniform(±1/sqrt(H)); nn.Linear head weight and bias uniform(±1/sqrt(fan_in)) = ±1/sqrt(H)
//   (kaiming_uniform with a = sqrt(5) reduces to that bound).
import { Rng } from '../rng.ts';
import { isGpt, type ModelConfig } from './config.ts';
import { paramLayout, type ParamSpec } from './layout.ts';

type Init = { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number } | { kind: 'const'; value: number };

/** how each parameter is initialised (exported so tests and docs can state it per name) */
export function paramInit(config: ModelConfig, p: ParamSpec): Init {
  if (isGpt(config)) {
    if (/\.ln_(1|2|f)\.weight$/.test(p.name)) return { kind: 'const', value: 1 };
    if (p.name.endsWith('.bias')) return { kind: 'const', value: 0 };
    if (p.name.endsWith('.c_proj.weight')) return { kind: 'normal', std: 0.02 / Math.sqrt(2 * config.n_layer) };
    return { kind: 'normal', std: 0.02 };
  }
  if (p.name === 'embedding.weight') return { kind: 'normal', std: 1 };
  return { kind: 'uniform', bound: 1 / Math.sqrt(config.hidden_size) };
}

/** a fresh Float32Array of the layout's size, initialised from `seed` */
export function initParams(config: ModelConfig, seed: number): Float32Array {
  const layout = paramLayout(config);
  const flat = new Float32Array(layout.size);
  const rng = new Rng(seed);
  for (const p of layout.params) {
    const v = layout.view(flat, p.name);
    const how = paramInit(config, p);
    if (how.kind === 'const') v.fill(how.value);
    else if (how.kind === 'normal') for (let i = 0; i < v.length; i++) v[i] = rng.normal() * how.std;
    else for (let i = 0; i < v.length; i++) v[i] = rng.uniform(-how.bound, how.bound);
  }
  return flat;
}
