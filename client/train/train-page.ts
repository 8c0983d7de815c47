// The browser entry of `gradswarm train --runtime browser` (bundled and served by client/host/browser.ts): opens
// the GPU and runs the same trainer loop as Node (client/train/trainer.ts) in the page. Node hands it the run config
// and the vocabulary as arguments, and the token array (int32, little-endian) and, on resume, the checkpoint and
// optimizer files as binary routes beside the page. Progress goes back through functions Node exposes on window;
// checkpoints go back as base64 safetensors bytes, which Node writes (atomically, keep-last-N) where it writes them
// for the Node runtime.
import { TokenDataset } from '../../shared/data/dataset.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { decodeCheckpoint, decodeOptimizerState, encodeCheckpoint, encodeOptimizerState } from '../../shared/models/checkpoint.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import type { Gpu } from '../runtime/gpu.ts';
import { openGpu } from '../runtime/index.ts';
import { train, TrainingDivergedError, type EvalReport, type StepReport, type TrainResult } from './trainer.ts';

/** what Node exposes on window (page.exposeFunction) */
interface NodeBindings {
  gradswarmStep(r: StepReport): Promise<void>;
  gradswarmEval(r: EvalReport): Promise<void>;
  /** writes the checkpoint (base64 safetensors of the weights and of the optimizer state); returns its path */
  gradswarmSave(weightsB64: string, optimB64: string): Promise<string>;
  gradswarmCheckpoint(where: string, step: number): Promise<void>;
}

export interface PageTrainArgs {
  config: RunConfig;
  vocab: string[];
  /** the checkpoint to resume from is served at /resume.safetensors (and its optimizer file at /resume.optim.safetensors) */
  resume: boolean;
}

export type PageTrainOutcome = { ok: TrainResult } | { diverged: { message: string; step: number; lastCheckpoint?: string } };

const b64encode = (u: Uint8Array) => {
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
};

async function fetchBytes(path: string): Promise<Uint8Array | undefined> {
  const r = await fetch(path);
  if (r.status === 404) return undefined;
  if (!r.ok) throw new Error(`fetching ${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

let gpu: Gpu | null = null;
async function ensure(): Promise<Gpu> {
  gpu ??= await openGpu(navigator.gpu);
  return gpu;
}

const api = {
  async info() {
    const g = await ensure();
    return { adapter: g.adapterName, fallback: g.isFallback };
  },
  async train(args: PageTrainArgs): Promise<PageTrainOutcome> {
    const w = window as unknown as NodeBindings;
    const g = await ensure();
    const tokenizer = new CharTokenizer(args.vocab);
    const tokenBytes = await fetchBytes('/tokens.bin');
    if (!tokenBytes) throw new Error('the page got no token array from Node');
    const tokens = new Int32Array(tokenBytes.buffer, tokenBytes.byteOffset, tokenBytes.byteLength / 4);
    const dataset = new TokenDataset(tokens, tokenizer.size);
    let resume;
    if (args.resume) {
      const ck = await fetchBytes('/resume.safetensors');
      if (!ck) throw new Error('the page got no checkpoint to resume from');
      const checkpoint = decodeCheckpoint(ck);
      const opt = await fetchBytes('/resume.optim.safetensors');
      resume = { checkpoint, optimizer: opt ? decodeOptimizerState(opt, checkpoint.config) : undefined };
    }
    try {
      const result = await train({
        gpu: g,
        config: args.config,
        dataset,
        tokenizer,
        resume,
        onStep: (r) => void w.gradswarmStep(r), // fire and forget: bindings arrive in order
        onEval: (r) => void w.gradswarmEval(r),
        saveCheckpoint: (ck, st) => w.gradswarmSave(b64encode(encodeCheckpoint(ck)), b64encode(encodeOptimizerState(st, ck.config))),
        onCheckpoint: (where, step) => void w.gradswarmCheckpoint(where, step),
      });
      return { ok: result };
    } catch (e) {
      if (e instanceof TrainingDivergedError) return { diverged: { message: e.message, step: e.step, lastCheckpoint: e.lastCheckpoint } };
      throw e;
    }
  },
};

(window as unknown as { gradswarm: typeof api }).gradswarm = api;
