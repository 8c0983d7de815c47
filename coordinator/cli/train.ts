// `gradswarm train CONFIG.json [--runtime node|browser] [--resume]`: trains one model on one worker.
// CONFIG is a run config file (shared/train/run-config.ts) or a preset name from coordinator/presets/.
// Relative paths in it (data.corpus, train.out_dir) are resolved against the working directory.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { train, TrainingDivergedError, type StepReport } from '../../client/train/trainer.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { parseRunConfig } from '../../shared/train/run-config.ts';
import { latestCheckpoint, readCheckpoint, writeCheckpoint } from '../checkpoint.ts';
import { loadCorpus } from '../data/corpus.ts';
import { ROOT } from './root.ts';

export const PRESETS_DIR = join(ROOT, 'coordinator', 'presets');

export function listPresets(): string[] {
  return existsSync(PRESETS_DIR) ? readdirSync(PRESETS_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort() : [];
}

function readConfigFile(spec: string): { path: string; json: unknown } {
  let path = resolve(spec);
  if (!existsSync(path)) {
    const preset = join(PRESETS_DIR, spec.endsWith('.json') ? spec : `${spec}.json`);
    if (!existsSync(preset)) throw new Error(`config not found: ${spec} (neither a file nor a preset; presets: ${listPresets().join(', ') || 'none'})`);
    path = preset;
  }
  try {
    return { path, json: JSON.parse(readFileSync(path, 'utf8')) };
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message})`);
  }
}

const fmtTime = (s: number): string => {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

export async function trainCommand(configSpec: string, o: { runtime: string; resume?: boolean }): Promise<void> {
  if (o.runtime === 'browser') {
    throw new Error('--runtime browser is not available for training yet: use --runtime node (the default), which runs the same WGSL kernels through Dawn');
  }
  if (o.runtime !== 'node') throw new Error(`unknown runtime '${o.runtime}' (node or browser)`);
  const { path, json } = readConfigFile(configSpec);
  const corpora = new Map<string, ReturnType<typeof loadCorpus>>();
  const corpusOf = (spec: string) => {
    if (!corpora.has(spec)) corpora.set(spec, loadCorpus(spec));
    return corpora.get(spec)!;
  };
  let config;
  try {
    config = parseRunConfig(json, { vocabSize: (d) => CharTokenizer.fromText(corpusOf(d.corpus).text).size });
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const corpus = corpusOf(config.data.corpus);
  const { tokenizer, dataset } = encodeCorpus(corpus.text);
  const outDir = resolve(config.train.out_dir);

  let resume;
  if (o.resume) {
    const latest = await latestCheckpoint(outDir);
    if (!latest) throw new Error(`--resume: no complete checkpoint in ${outDir}`);
    resume = await readCheckpoint(latest);
    console.log(`resuming from ${latest} (step ${resume.checkpoint.step})`);
    if (resume.checkpoint.step >= config.train.max_steps) {
      console.log(`already at step ${resume.checkpoint.step} of max_steps ${config.train.max_steps}: nothing to do`);
      return;
    }
  }

  const gpu = await openNodeGpu();
  const m = config.model;
  const tty = process.stdout.isTTY === true;
  const every = Math.max(1, Math.floor(config.train.max_steps / 50));
  let valLoss: number | undefined;
  let lastLine = '';
  let rate = 0; // smoothed tokens/s
  const started = performance.now();
  try {
    console.log(
      `training ${m.model} (${JSON.stringify(m)}) on ${corpus.name} (${dataset.length} chars, vocab ${tokenizer.size}) ` +
        `B=${config.data.batch_size} T=${config.data.block_size} accum=${config.optim.grad_accum_steps}, runtime node on ${gpu.adapterName}${gpu.isFallback ? ' (software)' : ''}; checkpoints in ${outDir}`,
    );
    const line = (r: StepReport) => {
      rate = rate ? 0.9 * rate + 0.1 * r.tokensPerSec : r.tokensPerSec;
      const tokPerStep = config.data.batch_size * config.data.block_size * config.optim.grad_accum_steps;
      const eta = ((r.maxSteps - r.step) * tokPerStep) / rate;
      const w = 20;
      const fill = Math.round((w * r.step) / r.maxSteps);
      const bar = `[${'#'.repeat(fill)}${'.'.repeat(w - fill)}]`;
      return `${bar} step ${r.step}/${r.maxSteps} loss ${r.loss.toFixed(4)} val ${valLoss === undefined ? '-' : valLoss.toFixed(4)} lr ${r.lr.toExponential(2)} norm ${r.gradNorm.toFixed(3)} ${Math.round(r.tokensPerSec)} tok/s ETA ${fmtTime(eta)}`;
    };
    const result = await train({
      gpu,
      config,
      dataset,
      tokenizer,
      resume,
      onStep: (r) => {
        lastLine = line(r);
        if (tty) process.stdout.write(`\r${lastLine}\x1b[K`);
        else if (r.step % every === 0 || r.step === r.maxSteps || r.step === 1) console.log(lastLine);
      },
      onEval: (e) => {
        valLoss = e.valLoss;
        if (tty && lastLine) process.stdout.write('\n');
        console.log(`eval step ${e.step}: val loss ${e.valLoss.toFixed(4)}`);
      },
      saveCheckpoint: (ck, st) => writeCheckpoint(outDir, ck, st, { keep: config.train.keep_checkpoints }),
      onCheckpoint: (where, step) => {
        if (tty) process.stdout.write('\n');
        console.log(`checkpoint step ${step}: ${where}`);
      },
    });
    if (tty) process.stdout.write('\n');
    const f = (x?: number) => (x === undefined ? '-' : x.toFixed(4));
    console.log(
      `done: step ${result.step} in ${fmtTime((performance.now() - started) / 1000)}; train loss ${f(result.firstLoss)} -> ${f(result.lastLoss)}, ` +
        `val loss ${f(result.firstValLoss)} -> ${f(result.lastValLoss)}, ${Math.round(result.tokensPerSec)} tokens/s; last checkpoint ${result.lastCheckpoint ?? 'none'}`,
    );
  } catch (e) {
    if (tty) process.stdout.write('\n');
    if (e instanceof TrainingDivergedError) {
      console.error(`gradswarm: ${e.message}`);
      process.exitCode = 2;
      return;
    }
    throw e;
  } finally {
    gpu.destroy();
  }
}
