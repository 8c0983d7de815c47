// Checkpoint files: atomic pairs named ckpt-<step>[.optim].safetensors, the newest complete pair found (a killed
// writer's leftovers ignored), keep-last-N pruning, and reading a checkpoint with its optimizer sibling.
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latestCheckpoint, readCheckpoint, writeCheckpoint } from '../../coordinator/checkpoint.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { encodeOptimizerState, type Checkpoint } from '../../shared/models/checkpoint.ts';
import { parseModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { Rng } from '../../shared/rng.ts';

const config = parseModelConfig({ model: 'gru', vocab_size: 7, embed_size: 3, hidden_size: 4, num_layers: 1 });
const n = paramLayout(config).size;
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function pair(step: number) {
  const rng = new Rng(step + 1);
  const ckpt: Checkpoint = {
    config,
    params: rng.normals(n),
    tokenizer: new CharTokenizer([...'abcdefg']),
    step,
    optimizer: { name: 'adamw', lr: 1e-3, betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0.1, warmup_steps: 10 },
  };
  return { ckpt, state: { step, exp_avg: rng.normals(n), exp_avg_sq: rng.floats(n, 0, 1) } };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradswarm-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoint files', () => {
  it('writes a named pair atomically, leaving no temp file, and reads both back bit for bit', async () => {
    const { ckpt, state } = pair(42);
    const path = await writeCheckpoint(join(dir, 'run'), ckpt, state);
    expect(path).toBe(join(dir, 'run', 'ckpt-42.safetensors'));
    expect((await readdir(join(dir, 'run'))).sort()).toEqual(['ckpt-42.optim.safetensors', 'ckpt-42.safetensors']);
    const back = await readCheckpoint(path);
    expect(bits(back.checkpoint.params)).toEqual(bits(ckpt.params));
    expect(back.checkpoint.step).toBe(42);
    expect(back.optimizer!.step).toBe(42);
    expect(bits(back.optimizer!.exp_avg)).toEqual(bits(state.exp_avg));
    expect(bits(back.optimizer!.exp_avg_sq)).toEqual(bits(state.exp_avg_sq));
  });

  it("finds the newest complete pair by step, ignoring a killed writer's temp file and a lone optimizer file", async () => {
    expect(await latestCheckpoint(join(dir, 'none'))).toBeUndefined();
    for (const s of [9, 10]) await writeCheckpoint(dir, pair(s).ckpt, pair(s).state);
    // a writer killed before its renames, and one killed between the optimizer's rename and the weights'
    await writeFile(join(dir, `.ckpt-20.safetensors.tmp-${process.pid + 1}-deadbeef`), 'half a file');
    await writeFile(join(dir, 'ckpt-30.optim.safetensors'), encodeOptimizerState(pair(30).state, config));
    expect(await latestCheckpoint(dir)).toBe(join(dir, 'ckpt-10.safetensors')); // 10 > 9 numerically, not as text
  });

  it('keeps the last N pairs and clears dead writers\' temp files', async () => {
    const temp = `.ckpt-5.optim.safetensors.tmp-${process.pid + 1}-0123abcd`;
    await writeFile(join(dir, temp), 'x');
    for (const s of [1, 2, 3, 10]) await writeCheckpoint(dir, pair(s).ckpt, pair(s).state, { keep: 2 });
    expect((await readdir(dir)).sort()).toEqual(['ckpt-10.optim.safetensors', 'ckpt-10.safetensors', 'ckpt-3.optim.safetensors', 'ckpt-3.safetensors']);
    await expect(writeCheckpoint(dir, pair(11).ckpt, pair(11).state, { keep: 0 })).rejects.toThrow('keep must be an integer ≥ 1, got 0');
  });

  it('reads a checkpoint without its sibling, and refuses mismatched steps', async () => {
    const path = await writeCheckpoint(dir, pair(4).ckpt, pair(4).state);
    await writeFile(join(dir, 'ckpt-4.optim.safetensors'), encodeOptimizerState(pair(5).state, config));
    await expect(readCheckpoint(path)).rejects.toThrow('optimizer state is at step 5 but ckpt-4.safetensors at step 4');
    await unlink(join(dir, 'ckpt-4.optim.safetensors'));
    const alone = await readCheckpoint(path);
    expect(alone.optimizer).toBeUndefined();
    expect(alone.checkpoint.step).toBe(4);
    await expect(writeCheckpoint(dir, pair(6).ckpt, pair(7).state)).rejects.toThrow('optimizer state is at step 7 but the checkpoint at step 6');
  });
});
