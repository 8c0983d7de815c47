// `gradswarm train CONFIG.json [--runtime browser|node] [--resume]`: trains one model on one worker.
// Both runtimes run the same trainer loop (client/train/trainer.ts): `browser` in headless Chromium
// (client/train/train-page.ts; Node loads and tokenizes the corpus and serves the token array and the resume
// checkpoint as binary routes; progress and checkpoint bytes come back through exposed functions), `node` through
// Dawn. Checkpoints are written here in both cases (coordinator/checkpoint.ts: atomic, keep-last-N).
// CONFIG is a run config file (shared/train/run-config.ts) or a preset name from coordinator/presets/.
// Relative paths in it (data.corpus, train.out_dir) are resolved against the working directory.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openBrowserPage } from '../../client/host/browser.ts';
import { pageError } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import type { PageTrainArgs, PageTrainOutcome } from '../../client/train/train-page.ts';
import { train, TrainingDivergedError, type EvalReport, type StepReport, type TrainResult } from '../../client/train/trainer.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { parseRunConfig } from '../../shared/train/run-config.ts';
import { decodeCheckpoint, decodeOptimizerState } from '../../shared/models/checkpoint.ts';
import { latestCheckpoint, optimizerPath, readCheckpoint, writeCheckpoint } from '../checkpoint.ts';
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

/** the progress callbacks the CLI gives either runtime */
interface Progress {
  onStep(r: StepReport): void;
  onEval(e: EvalReport): void;
  onCheckpoint(where: string, step: number): void;
}

export async function trainCommand(configSpec: string, o: { runtime: string; resume?: boolean }): Promise<void> {
  if (o.runtime !== 'node' && o.runtime !== 'browser') throw new Error(`unknown runtime '${o.runtime}' (browser or node)`);
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
  let resumePath: string | undefined;
  if (o.resume) {
    resumePath = await latestCheckpoint(outDir);
    if (!resumePath) throw new Error(`--resume: no complete checkpoint in ${outDir}`);
    resume = await readCheckpoint(resumePath);
    console.log(`resuming from ${resumePath} (step ${resume.checkpoint.step})`);
    if (resume.checkpoint.step >= config.train.max_steps) {
      console.log(`already at step ${resume.checkpoint.step} of max_steps ${config.train.max_steps}: nothing to do`);
      return;
    }
  }

  const m = config.model;
  const tty = process.stdout.isTTY === true;
  const every = Math.max(1, Math.floor(config.train.max_steps / 50));
  let valLoss: number | undefined;
  let lastLine = '';
  let rate = 0; // smoothed tokens/s
  const started = performance.now();
  // metrics.jsonl in out_dir: one JSON line per step and per eval ({step, loss, lr, grad_norm, tokens_per_s, t} /
  // {step, val_loss, t}; t = seconds since this process started training), for plots and the learning table.
  // A fresh run starts the file over; a resumed run appends.
  const metricsPath = join(outDir, 'metrics.jsonl');
  mkdirSync(outDir, { recursive: true });
  if (!o.resume) writeFileSync(metricsPath, '');
  const metric = (rec: Record<string, number>) => appendFileSync(metricsPath, `${JSON.stringify({ ...rec, t: +((performance.now() - started) / 1000).toFixed(2) })}\n`);
  const header = (adapter: string, fallback: boolean) =>
    console.log(
      `training ${m.model} (${JSON.stringify(m)}) on ${corpus.name} (${dataset.length} chars, vocab ${tokenizer.size}) ` +
        `B=${config.data.batch_size} T=${config.data.block_size} accum=${config.optim.grad_accum_steps}, runtime ${o.runtime} on ${adapter}${fallback ? ' (software)' : ''}; checkpoints in ${outDir}`,
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
  const progress: Progress = {
    onStep: (r) => {
      metric({ step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens_per_s: Math.round(r.tokensPerSec) });
      lastLine = line(r);
      if (tty) process.stdout.write(`\r${lastLine}\x1b[K`);
      else if (r.step % every === 0 || r.step === r.maxSteps || r.step === 1) console.log(lastLine);
    },
    onEval: (e) => {
      metric({ step: e.step, val_loss: e.valLoss });
      valLoss = e.valLoss;
      if (tty && lastLine) process.stdout.write('\n');
      console.log(`eval step ${e.step}: val loss ${e.valLoss.toFixed(4)}`);
    },
    onCheckpoint: (where, step) => {
      if (tty) process.stdout.write('\n');
      console.log(`checkpoint step ${step}: ${where}`);
    },
  };
  const keep = config.train.keep_checkpoints;
  try {
    let result: TrainResult;
    if (o.runtime === 'node') {
      const gpu = await openNodeGpu();
      try {
        header(gpu.adapterName, gpu.isFallback);
        result = await train({
          gpu,
          config,
          dataset,
          tokenizer,
          resume,
          ...progress,
          saveCheckpoint: (ck, st) => writeCheckpoint(outDir, ck, st, { keep }),
        });
      } finally {
        gpu.destroy();
      }
    } else {
      // the page gets the tokens as little-endian int32 and the resume files as they are on disk
      const tokens = Int32Array.from(dataset.tokens);
      const routes = new Map<string, () => Uint8Array | undefined>([['/tokens.bin', () => new Uint8Array(tokens.buffer)]]);
      if (resumePath) {
        const ck = await readFile(resumePath);
        const opt = await readFile(optimizerPath(resumePath)).catch(() => undefined);
        routes.set('/resume.safetensors', () => ck);
        routes.set('/resume.optim.safetensors', () => opt);
      }
      const bp = await openBrowserPage(join(ROOT, 'client', 'train', 'train-page.ts'), {
        routes,
        log: (l) => process.env.GRADSWARM_DEBUG && console.error(l),
      });
      // Ctrl-C (or a kill) closes Chromium before exiting, so no browser is left behind
      let stopping: Promise<never> | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        if (tty) process.stdout.write('\n');
        console.error(`gradswarm: ${sig}: closing the browser`);
        stopping ??= bp
          .close()
          .catch(() => {})
          .then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const { page } = bp;
        await page.exposeFunction('gradswarmStep', (r: StepReport) => progress.onStep(r));
        await page.exposeFunction('gradswarmEval', (r: EvalReport) => progress.onEval(r));
        await page.exposeFunction('gradswarmCheckpoint', (where: string, step: number) => progress.onCheckpoint(where, step));
        await page.exposeFunction('gradswarmSave', async (weightsB64: string, optimB64: string) => {
          const ck = decodeCheckpoint(Buffer.from(weightsB64, 'base64'));
          const st = decodeOptimizerState(Buffer.from(optimB64, 'base64'), ck.config);
          return writeCheckpoint(outDir, ck, st, { keep });
        });
        const call = <T>(fn: string, ...args: unknown[]) =>
          (page.evaluate(([f, a]) => (window as any).gradswarm[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>).catch((e: unknown) => {
            throw pageError(e);
          });
        const info = await call<{ adapter: string; fallback: boolean }>('info');
        header(info.adapter, info.fallback);
        const args: PageTrainArgs = { config, vocab: [...tokenizer.vocab], resume: resumePath !== undefined };
        const out = await call<PageTrainOutcome>('train', args);
        if ('diverged' in out) throw new TrainingDivergedError(out.diverged.message, out.diverged.step, out.diverged.lastCheckpoint);
        result = out.ok;
      } catch (e) {
        if (stopping) await stopping; // the page went away because we were interrupted: exit with the signal's code
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (!stopping) await bp.close();
      }
    }
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
  }
}
