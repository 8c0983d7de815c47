// Checkpoints on disk (Node): a run's folder holds pairs `ckpt-<step>.safetensors` (weights and metadata, what a
// researcher loads in PyTorch) and `ckpt-<step>.optim.safetensors` (AdamW moments, to resume exactly).
// Each file is written atomically: a temp file in the same folder, fsync, rename over the final name, fsync the
// folder. The optimizer file is renamed into place first, so a weights file never exists without its sibling;
// a writer killed midway leaves only a `.ckpt-*.tmp-*` file, which nothing reads and the next prune removes.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  decodeCheckpoint,
  decodeOptimizerState,
  encodeCheckpoint,
  encodeOptimizerState,
  type Checkpoint,
  type OptimizerState,
} from '../shared/models/checkpoint.ts';

const CKPT = /^ckpt-(\d+)\.safetensors$/;
const TEMP = /^\.ckpt-.*\.tmp-(\d+)-[0-9a-f]+$/;

export const checkpointName = (step: number): string => `ckpt-${step}.safetensors`;
/** the optimizer file beside a checkpoint: `ckpt-<step>.optim.safetensors` */
export const optimizerPath = (checkpointPath: string): string => checkpointPath.replace(/\.safetensors$/, '.optim.safetensors');

export interface WriteOptions {
  /** keep only the newest `keep` complete pairs, deleting older ones after the write (default: keep all) */
  keep?: number;
}

/**
 * Writes `ckpt-<step>.safetensors` and its optimizer sibling into `dir` (created if needed), atomically, then
 * prunes to the newest `keep` pairs. Returns the checkpoint's path.
 */
export async function writeCheckpoint(dir: string, ckpt: Omit<Checkpoint, 'gradswarm_version'>, state: OptimizerState, opts: WriteOptions = {}): Promise<string> {
  if (state.step !== ckpt.step) throw new Error(`checkpoint: optimizer state is at step ${state.step} but the checkpoint at step ${ckpt.step}`);
  if (opts.keep !== undefined && !(Number.isInteger(opts.keep) && opts.keep >= 1)) throw new Error(`checkpoint: keep must be an integer ≥ 1, got ${opts.keep}`);
  const weights = encodeCheckpoint(ckpt);
  const optim = encodeOptimizerState(state, ckpt.config);
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointName(ckpt.step));
  await writeAtomic(optimizerPath(path), optim);
  await writeAtomic(path, weights);
  if (opts.keep !== undefined) await pruneCheckpoints(dir, opts.keep);
  return path;
}

/** the newest complete checkpoint (weights and optimizer file both present) in `dir`, or undefined */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const list = await listCheckpoints(dir);
  return list.length ? list[list.length - 1].path : undefined;
}

/** complete checkpoints in `dir`, oldest first (by step, numerically) */
export async function listCheckpoints(dir: string): Promise<{ step: number; path: string }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const have = new Set(names);
  const out: { step: number; path: string }[] = [];
  for (const n of names) {
    const m = CKPT.exec(n);
    if (m && have.has(basename(optimizerPath(n)))) out.push({ step: Number(m[1]), path: join(dir, n) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** deletes all but the newest `keep` pairs, and temp files that other (dead or finished) writers left */
export async function pruneCheckpoints(dir: string, keep: number): Promise<void> {
  const list = await listCheckpoints(dir);
  for (const { path } of list.slice(0, Math.max(0, list.length - keep))) {
    await unlinkIfThere(path); // weights first: a half-deleted pair is then no longer listed
    await unlinkIfThere(optimizerPath(path));
  }
  for (const n of await readdir(dir)) {
    const m = TEMP.exec(n);
    if (m && Number(m[1]) !== process.pid) await unlinkIfThere(join(dir, n));
  }
}

/** the checkpoint at `path` and, when its sibling file exists, the optimizer state (which must be at the same step) */
export async function readCheckpoint(path: string): Promise<{ checkpoint: Checkpoint; optimizer?: OptimizerState }> {
  const checkpoint = decodeCheckpoint(await readFile(path));
  let bytes: Uint8Array;
  try {
    bytes = await readFile(optimizerPath(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { checkpoint };
    throw e;
  }
  const optimizer = decodeOptimizerState(bytes, checkpoint.config);
  if (optimizer.step !== checkpoint.step) {
    throw new Error(`${optimizerPath(path)}: optimizer state is at step ${optimizer.step} but ${basename(path)} at step ${checkpoint.step}`);
  }
  return { checkpoint, optimizer };
}

/** temp file in the same folder (so rename is atomic), fsync, rename over `path`, fsync the folder */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const f = await open(temp, 'wx');
  try {
    await f.writeFile(bytes);
    await f.sync();
  } catch (e) {
    await f.close();
    await unlinkIfThere(temp);
    throw e;
  }
  await f.close();
  await rename(temp, path);
  if (process.platform !== 'win32') {
    // the rename itself is durable only once the folder's entry is on disk (Windows cannot open a folder to fsync)
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

async function unlinkIfThere(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
