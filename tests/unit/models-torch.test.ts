// The CPU reference models against PyTorch (1.13, float64): nanoGPT's GPT (its non-flash attention path) and
// torch.nn.RNN / LSTM / GRU language models (embedding → rnn(batch_first=True) → nn.Linear head), with
// parameters filled in PyTorch's named_parameters order by 0.5·sin(1.3·i + 0.7) over the flat index i. That
// order and those shapes must be our layout's for the values to agree, so this also checks the layout. Per
// tensor the golden values are Σ grad and Σ grad·cos(0.9·j) (j the element index within the tensor).
// The script that produced GOLDEN is in docs/models.md ("PyTorch golden values").
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { modelLossAndGrads } from '../../shared/models/reference/index.ts';

const CONFIGS: Record<string, ModelConfig> = {
  gpt: parseModelConfig({ model: 'gpt', vocab_size: 11, block_size: 7, n_layer: 2, n_head: 2, n_embd: 6 }),
  rnn: parseModelConfig({ model: 'rnn', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
  lstm: parseModelConfig({ model: 'lstm', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
  gru: parseModelConfig({ model: 'gru', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
};

interface Golden {
  size: number;
  loss: number;
  names: string[];
  grads: Record<string, [number, number]>;
}

// prettier-ignore
const GOLDEN: Record<string, Golden> = {
  gpt: {
    size: 1140,
    loss: 2.6986694088496814,
    names: ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.attn.c_proj.bias", "transformer.h.0.ln_2.weight", "transformer.h.0.ln_2.bias", "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_fc.bias", "transformer.h.0.mlp.c_proj.weight", "transformer.h.0.mlp.c_proj.bias", "transformer.h.1.ln_1.weight", "transformer.h.1.ln_1.bias", "transformer.h.1.attn.c_attn.weight", "transformer.h.1.attn.c_attn.bias", "transformer.h.1.attn.c_proj.weight", "transformer.h.1.attn.c_proj.bias", "transformer.h.1.ln_2.weight", "transformer.h.1.ln_2.bias", "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_fc.bias", "transformer.h.1.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.bias", "transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"],
    grads: {
      'transformer.wte.weight': [2.7755575615628914e-17, -0.09362225806436264],
      'transformer.wpe.weight': [-1.3877787807814457e-17, 0.01436945639885396],
      'transformer.h.0.ln_1.weight': [-0.005975683673567257, 0.0007232750842494315],
      'transformer.h.0.ln_1.bias': [0.0006288483513641249, -0.0034490140740297574],
      'transformer.h.0.attn.c_attn.weight': [0.003012069620846526, -0.0028565143969572575],
      'transformer.h.0.attn.c_attn.bias': [-0.0018455103786686902, 0.0035092846165822797],
      'transformer.h.0.attn.c_proj.weight': [2.7755575615628914e-17, -0.01792329669382925],
      'transformer.h.0.attn.c_proj.bias': [-2.0816681711721685e-17, 0.01184310344914176],
      'transformer.h.0.ln_2.weight': [-0.00024760455122604583, 0.00017685448298188837],
      'transformer.h.0.ln_2.bias': [-0.00030459826153912087, -0.001095015130242225],
      'transformer.h.0.mlp.c_fc.weight': [-0.001586109295409441, -0.0008451258421075663],
      'transformer.h.0.mlp.c_fc.bias': [-0.00035101225541069633, 0.0007108476257888263],
      'transformer.h.0.mlp.c_proj.weight': [-4.119968255444917e-17, -0.0007961114033248392],
      'transformer.h.0.mlp.c_proj.bias': [-6.938893903907228e-18, 0.01177418553934375],
      'transformer.h.1.ln_1.weight': [-0.0027799683694828604, 0.0005125673988457865],
      'transformer.h.1.ln_1.bias': [0.000578464582576912, -0.0034199967728091446],
      'transformer.h.1.attn.c_attn.weight': [0.0013964379241621333, -0.002774085203766991],
      'transformer.h.1.attn.c_attn.bias': [0.0018005192723653128, -0.003657760266503403],
      'transformer.h.1.attn.c_proj.weight': [0.0, -0.0016137272126208364],
      'transformer.h.1.attn.c_proj.bias': [-1.3877787807814457e-17, 0.011505422968744974],
      'transformer.h.1.ln_2.weight': [0.0006986502314748815, -0.00036703614535493257],
      'transformer.h.1.ln_2.bias': [-0.0002972208653575286, -0.0010995755017536328],
      'transformer.h.1.mlp.c_fc.weight': [-0.0006152456169050367, -0.0005863537645550595],
      'transformer.h.1.mlp.c_fc.bias': [0.0006112296815816377, -0.0005703503284997711],
      'transformer.h.1.mlp.c_proj.weight': [-1.3877787807814457e-17, 0.026336438547123295],
      'transformer.h.1.mlp.c_proj.bias': [-1.3877787807814457e-17, 0.011536290029268363],
      'transformer.ln_f.weight': [0.651522585157337, -0.548656203230292],
      'transformer.ln_f.bias': [-0.3089318906280612, -0.3732445859047978],
    },
  },
  rnn: {
    size: 205,
    loss: 2.2936044823425425,
    names: ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1", "head.weight", "head.bias"],
    grads: {
      'embedding.weight': [0.004935890258213192, -0.04448609852443636],
      'rnn.weight_ih_l0': [0.0012466309458570475, -0.01084652148754028],
      'rnn.weight_hh_l0': [0.0025227053656028606, 0.03866446391333608],
      'rnn.bias_ih_l0': [-0.006966208911927167, -0.004285792693327351],
      'rnn.bias_hh_l0': [-0.0069662089119271655, -0.004285792693327344],
      'rnn.weight_ih_l1': [0.1447378178909084, -0.03721907497334381],
      'rnn.weight_hh_l1': [0.030053060369706595, -0.06082669992891144],
      'rnn.bias_ih_l1': [0.005719777879091694, -0.007933442001593873],
      'rnn.bias_hh_l1': [0.005719777879091685, -0.00793344200159387],
      'head.weight': [0.0, 0.05801367111708787],
      'head.bias': [0.0, 0.002730347336154869],
    },
  },
  lstm: {
    size: 550,
    loss: 2.219002459070303,
    names: ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1", "head.weight", "head.bias"],
    grads: {
      'embedding.weight': [-0.00037642695112745123, 0.002715321892612384],
      'rnn.weight_ih_l0': [-0.005511560121579986, 0.00052299333276665],
      'rnn.weight_hh_l0': [-0.001853834573045684, -0.0006340246033703178],
      'rnn.bias_ih_l0': [0.0001280618659835819, 0.0030789115658712675],
      'rnn.bias_hh_l0': [0.0001280618659835821, 0.003078911565871267],
      'rnn.weight_ih_l1': [-0.012647036770560404, 0.0011053562161121534],
      'rnn.weight_hh_l1': [0.00015588562520952491, -0.009189230330425204],
      'rnn.bias_ih_l1': [0.026672028587288916, 0.014889559816418601],
      'rnn.bias_hh_l1': [0.026672028587288916, 0.014889559816418603],
      'head.weight': [-1.0408340855860843e-17, -0.0864328292534794],
      'head.bias': [0.0, 0.2633675500444994],
    },
  },
  gru: {
    size: 435,
    loss: 2.302368727652044,
    names: ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1", "head.weight", "head.bias"],
    grads: {
      'embedding.weight': [0.007692422745520188, 0.020391051595577893],
      'rnn.weight_ih_l0': [-0.002879887609684974, -0.0017845003272020418],
      'rnn.weight_hh_l0': [0.0003433151051522017, -0.0038370936819555257],
      'rnn.bias_ih_l0': [-0.0036616690484655495, 0.008389065207026373],
      'rnn.bias_hh_l0': [0.002183861010895131, 0.004781397907938995],
      'rnn.weight_ih_l1': [-0.003900286259378126, 0.06689384032651974],
      'rnn.weight_hh_l1': [-0.01154913692277083, -0.0024349064628030794],
      'rnn.bias_ih_l1': [-0.014989391961520278, 0.024860078959325155],
      'rnn.bias_hh_l1': [0.007172570122293796, 0.004872954720299907],
      'head.weight': [4.85722573273506e-17, -0.11014948183581827],
      'head.bias': [6.938893903907228e-18, 0.22089479792408095],
    },
  },
};

const B = 2;
const T = 5;

describe.each(Object.keys(CONFIGS))('%s reference model vs PyTorch', (m) => {
  it('has PyTorch\'s state_dict names and size, and its loss and gradients', () => {
    const config = CONFIGS[m];
    const gold = GOLDEN[m];
    const layout = paramLayout(config);
    const names = layout.params.map((p) => p.name);
    expect([...names, ...(m === 'gpt' ? ['lm_head.weight'] : [])]).toEqual(gold.names);
    expect(layout.size).toBe(gold.size);
    const params = Float64Array.from({ length: layout.size }, (_, i) => 0.5 * Math.sin(1.3 * i + 0.7));
    const V = config.vocab_size;
    const i = Int32Array.from({ length: B * T }, (_, n) => n);
    const idx = { shape: [B, T], data: i.map((n) => (n * 7 + 3) % V) };
    const targets = { shape: [B, T], data: i.map((n) => (n % 4 === 3 ? -1 : (n * 5 + 1) % V)) };
    const { loss, grads } = modelLossAndGrads(config, params, idx, targets);
    expect(Math.abs(loss - gold.loss), `loss ${loss} vs PyTorch ${gold.loss}`).toBeLessThan(1e-12 * Math.abs(gold.loss));
    for (const name of names) {
      const g = layout.view(grads, name);
      let sum = 0;
      let wsum = 0;
      for (let j = 0; j < g.length; j++) {
        sum += g[j];
        wsum += g[j] * Math.cos(0.9 * j);
      }
      const [gs, gw] = gold.grads[name];
      const scale = Math.sqrt(g.reduce((s, v) => s + v * v, 0)) * Math.sqrt(g.length);
      expect(Math.abs(sum - gs), `${name}: Σ grad ${sum} vs PyTorch ${gs}`).toBeLessThan(1e-10 * scale + 1e-15);
      expect(Math.abs(wsum - gw), `${name}: Σ grad·cos ${wsum} vs PyTorch ${gw}`).toBeLessThan(1e-10 * scale + 1e-15);
    }
  });
});
