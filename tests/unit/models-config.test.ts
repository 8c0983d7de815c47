// Model configs: defaults, every problem listed by path, and the checkpoint JSON round trip.
import { describe, expect, it } from 'vitest';
import { configJson, GPT_DEFAULTS, parseModelConfig, recurrentDefaults } from '../../shared/models/config.ts';

const problems = (json: unknown): string => {
  try {
    parseModelConfig(json);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected parseModelConfig to throw');
};

describe('parseModelConfig', () => {
  it('fills defaults for each family', () => {
    expect(parseModelConfig({ model: 'gpt' })).toEqual(GPT_DEFAULTS);
    for (const m of ['rnn', 'lstm', 'gru'] as const) expect(parseModelConfig({ model: m })).toEqual(recurrentDefaults(m));
    expect(parseModelConfig('{"model": "lstm", "hidden_size": 32}')).toEqual({ ...recurrentDefaults('lstm'), hidden_size: 32 });
  });

  it('names n_head when it does not divide n_embd', () => {
    expect(problems({ model: 'gpt', n_head: 5, n_embd: 64 })).toBe('model config: n_head: 5 does not divide n_embd 64');
  });

  it('lists every problem by path in one error', () => {
    const msg = problems({ model: 'gpt', n_layer: 0, n_head: 3, n_embd: 64, block_size: 'long', dropout: 0.1, bias: true, vocab_size: 2.5 });
    expect(msg).toMatch(/^model config: /);
    expect(msg).toContain('n_layer: must be a positive integer (≥ 1), got 0');
    expect(msg).toContain('block_size: must be a positive integer, got "long"');
    expect(msg).toContain('vocab_size: must be a positive integer, got 2.5');
    expect(msg).toContain('dropout: only 0 is supported (there are no dropout kernels), got 0.1');
    expect(msg).toContain('bias: unknown key (a gpt config has model, vocab_size, block_size, n_layer, n_head, n_embd, dropout)');
    expect(msg).toContain('n_head: 3 does not divide n_embd 64');
    expect(msg.split('; ')).toHaveLength(6);
  });

  it('checks recurrent sizes and keys', () => {
    const msg = problems({ model: 'gru', hidden_size: -4, num_layers: null, n_embd: 3 });
    expect(msg).toContain('hidden_size: must be a positive integer (≥ 1), got -4');
    expect(msg).toContain('num_layers: must be a positive integer, got null');
    expect(msg).toContain('n_embd: unknown key (a gru config has model, vocab_size, embed_size, hidden_size, num_layers)');
  });

  it('refuses an unknown model, a non-object and bad JSON', () => {
    expect(problems({ model: 'mamba' })).toBe("model config: model: must be one of 'gpt', 'rnn', 'lstm', 'gru', got \"mamba\"");
    expect(problems({})).toContain('model: must be one of');
    expect(problems([1])).toBe('model config: must be a JSON object, got [1]');
    expect(problems('{model')).toMatch(/^model config: not JSON/);
  });

  it('refuses a head size the attention kernels cannot hold', () => {
    expect(problems({ model: 'gpt', n_head: 1, n_embd: 256 })).toContain('head size n_embd / n_head = 256 exceeds 128');
  });
});

describe('configJson', () => {
  it('round-trips through parseModelConfig with the keys in documented order', () => {
    const c = parseModelConfig({ model: 'gpt', n_embd: 48, n_head: 3, vocab_size: 77 });
    const text = configJson(c);
    expect(Object.keys(JSON.parse(text))).toEqual(['model', 'vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd', 'dropout']);
    expect(parseModelConfig(text)).toEqual(c);
    const r = parseModelConfig({ model: 'rnn', num_layers: 3 });
    expect(JSON.parse(configJson(r))).toEqual({ model: 'rnn', vocab_size: 128, embed_size: 64, hidden_size: 256, num_layers: 3 });
  });
});
