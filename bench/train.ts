// Node side of `gradswarm bench train`: for each family preset (coordinator/presets), full training steps of our
// model and of the same architecture in tfjs, in one headless Chromium page (bench/train-page.ts), on the same
// Moby-Dick batches from the same initial weights; then the GPU memory a step holds, measured from the buffer
// pool next to the estimate of shared/models/memory.ts, for the presets and (unless --quick) each family's
// default config. Prints each result as it finishes and writes the "Training step" section of bench/RESULTS.md.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { openBrowserPage } from '../client/host/browser.ts';
import { loadCorpus } from '../coordinator/data/corpus.ts';
import { encodeCorpus, type TokenDataset } from '../shared/data/dataset.ts';
import { GPT_DEFAULTS, recurrentDefaults, type ModelConfig } from '../shared/models/config.ts';
import { estimateStepMemory, formatBytes, MEMORY_PARTS, type MemoryEstimate } from '../shared/models/memory.ts';
import { parseRunConfig, type RunConfig } from '../shared/train/run-config.ts';
import { fmtMs } from './report.ts';
import { TRAIN_HEADING, writeTrainSection } from './results-file.ts';
import type { OursRun, TfjsRun, TrainBenchApi, TrainBenchArgs } from './train-page.ts';

export interface TrainBenchOptions {
  /** presets or families to run (gpt-char-small or gpt, ...) */
  only?: string[];
  quick?: boolean;
  /** markdown report path (default bench/RESULTS.md) */
  out?: string;
  /** false: our models only */
  peers?: boolean;
  /** timed steps per model (median reported) */
  runs?: number;
  seed?: number;
}

export const TRAIN_PRESETS = ['gpt-char-small', 'lstm-char', 'gru-char', 'rnn-char'];

/** steps per model: untimed warm-up (the first compiles every pipeline), then timed; tfjs steps take seconds each on SwiftShader */
const STEPS = {
  full: { warmup: 2, ours: 7, tfjs: 3 },
  quick: { warmup: 1, ours: 3, tfjs: 1 },
};
/** memory-only runs (each family's default config): steps enough to see allocation settle */
const MEMORY_STEPS = 3;
/** a family that takes longer than this leaves the page in an unknown state: the benchmark stops there */
const FAMILY_TIMEOUT_MS = 15 * 60_000;

interface PresetResult {
  name: string;
  run: RunConfig;
  ours: OursRun;
  tfjs?: TfjsRun | { error: string };
  /** untimed steps at the start of each run */
  warmup: number;
}

interface MemoryRow {
  name: string;
  config: ModelConfig;
  B: number;
  T: number;
  ours: OursRun;
  estimate: MemoryEstimate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const int = (n: number) => n.toLocaleString('en-US');
const version = (root: string, pkg: string) => {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;
  } catch {
    return '?';
  }
};

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

function presetConfig(root: string, name: string, vocab: number): RunConfig {
  const path = join(root, 'coordinator', 'presets', `${name}.json`);
  try {
    return parseRunConfig(JSON.parse(readFileSync(path, 'utf8')), { vocabSize: () => vocab });
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** each family's defaults (shared/models/config.ts) at B = 16 and T = 128 (gpt: its block_size) or 64 */
function defaultSizes(vocab: number): { name: string; config: ModelConfig; B: number; T: number }[] {
  return [
    { name: 'gpt defaults', config: { ...GPT_DEFAULTS, vocab_size: vocab }, B: 16, T: GPT_DEFAULTS.block_size },
    ...(['lstm', 'gru', 'rnn'] as const).map((m) => ({ name: `${m} defaults`, config: { ...recurrentDefaults(m), vocab_size: vocab }, B: 16, T: 64 })),
  ];
}

const pick = (names: string[], families: (n: string) => string, only?: string[]) => {
  if (!only?.length) return names;
  const known = new Set([...names, ...names.map(families)]);
  const bad = only.filter((o) => !known.has(o));
  if (bad.length) throw new Error(`--only: unknown ${bad.join(', ')} (presets: ${TRAIN_PRESETS.join(', ')}; or families: gpt, lstm, gru, rnn)`);
  return names.filter((n) => only.includes(n) || only.includes(families(n)));
};

export async function runTrainBench(root: string, o: TrainBenchOptions): Promise<void> {
  const steps = { ...STEPS[o.quick ? 'quick' : 'full'] };
  if (o.runs) steps.ours = steps.tfjs = o.runs;
  const seed = o.seed ?? (Math.random() * 2 ** 31) >>> 0;
  const out = o.out ?? join(root, 'bench', 'RESULTS.md');
  const peers = o.peers !== false;
  const corpus = loadCorpus('moby-dick');
  const { tokenizer, dataset } = encodeCorpus(corpus.text);
  const presets = TRAIN_PRESETS.map((name) => ({ name, run: presetConfig(root, name, tokenizer.size) }));
  const family = (n: string) => presets.find((p) => p.name === n)?.run.model.model ?? n.split(' ')[0];
  const chosen = pick(TRAIN_PRESETS, family, o.only);
  const families = new Set(chosen.map(family));
  const extra = o.quick ? [] : defaultSizes(tokenizer.size).filter((d) => families.has(d.config.model));
  const batches = (run: RunConfig, n: number): TrainBenchArgs['batches'] => batchesOf(dataset, seed, run.data.batch_size, run.data.block_size, n);

  const bp = await openBrowserPage(join(root, 'bench', 'train-page.ts'), { log: (l) => process.env.GRADSWARM_DEBUG && console.error(l) });
  const call = <K extends keyof TrainBenchApi>(fn: K, ...args: Parameters<TrainBenchApi[K]>): Promise<Awaited<ReturnType<TrainBenchApi[K]>>> =>
    withTimeout(
      bp.page.evaluate(([f, a]) => (window as any).gradswarm[f as string](...(a as unknown[])), [fn, args] as const),
      FAMILY_TIMEOUT_MS,
      `${fn} took over ${FAMILY_TIMEOUT_MS / 60_000} minutes`,
    );
  const results: PresetResult[] = [];
  const memory: MemoryRow[] = [];
  const started = new Date();
  let failed = false;
  try {
    const info = await call('info');
    const chromium = bp.page.context().browser()?.version() ?? '?';
    const cpu = cpus();
    const machine = {
      adapter: `${info.adapter}${info.fallback ? ' (software fallback adapter)' : ''}`,
      chromium,
      cpus: `${cpu.length} × ${cpu[0]?.model ?? '?'} (browser reports ${info.cores})`,
      load: loadavg()[0].toFixed(1),
      tfjs: peers ? `@tensorflow/tfjs-core + tfjs-backend-webgpu ${version(root, '@tensorflow/tfjs-backend-webgpu')}` : 'not run (--no-peers)',
    };
    console.log(`gradswarm training-step benchmark on ${machine.adapter}, Chromium ${chromium}, ${machine.cpus}`);
    console.log(`${steps.warmup} warm-up steps, then the median of ${steps.ours} timed steps (ours) and ${steps.tfjs} (tfjs); batches from Moby-Dick, seed ${seed}\n`);
    for (const name of chosen) {
      const run = presets.find((p) => p.name === name)!.run;
      const { batch_size: B, block_size: T } = run.data;
      const args = (timed: number): TrainBenchArgs => ({ config: run.model, optim: run.optim, B, T, seed, batches: batches(run, steps.warmup + timed) });
      const ours = await call('ours', args(steps.ours));
      const r: PresetResult = { name, run, ours, warmup: steps.warmup };
      console.log(`${name.padEnd(15)} ours  ${perStep(ours, steps.warmup, B * T)}; ${int(ours.params)} params; ${ours.dispatches} dispatches, ${ours.submits} submits per step; losses ${losses(ours)}`);
      if (peers) {
        try {
          r.tfjs = await call('tfjs', args(steps.tfjs));
          if (r.tfjs.params !== ours.params) throw new Error(`parameter counts differ: ours ${ours.params}, tfjs ${r.tfjs.params}`);
          console.log(`${''.padEnd(15)} tfjs  ${perStep(r.tfjs, steps.warmup, B * T)}; ${int(r.tfjs.params)} params; losses ${losses(r.tfjs)}; ours/tfjs ${speedup(r)}`);
        } catch (e) {
          r.tfjs = { error: (e as Error).message.split('\n')[0] };
          console.log(`${''.padEnd(15)} tfjs  error: ${r.tfjs.error}`);
          failed = true;
          if (bp.page.isClosed() || /took over|Target.*closed|crash/i.test(r.tfjs.error)) break;
        }
      }
      results.push(r);
      memory.push({ name, config: run.model, B, T, ours, estimate: estimateStepMemory(run.model, B, T) });
    }
    for (const d of extra) {
      const ours = await call('ours', { config: d.config, optim: presets[0].run.optim, B: d.B, T: d.T, seed, batches: batchesOf(dataset, seed, d.B, d.T, MEMORY_STEPS) });
      memory.push({ ...d, ours, estimate: estimateStepMemory(d.config, d.B, d.T) });
      console.log(`${d.name.padEnd(15)} ${int(ours.params)} params, B ${d.B}, T ${d.T}: ${perStep(ours, 1, d.B * d.T)} (memory run)`);
    }
    console.log(`\n${memoryText(memory)}`);
    const grew = memory.filter((m) => !reused(m.ours));
    if (grew.length) {
      console.error(`bench: the pool grew after step 2 for ${grew.map((m) => m.name).join(', ')}`);
      failed = true;
    }
    machine.load += ` at the start, ${loadavg()[0].toFixed(1)} at the end`;
    writeTrainSection(out, markdown(results, memory, { ...machine, started, seed, steps, quick: !!o.quick, only: o.only, peers }));
    console.log(`wrote the '${TRAIN_HEADING.slice(3)}' section of ${out}`);
  } finally {
    await bp.close();
  }
  if (failed) process.exitCode = 1;
}

function batchesOf(dataset: TokenDataset, seed: number, B: number, T: number, n: number): TrainBenchArgs['batches'] {
  return Array.from({ length: n }, (_, i) => {
    const b = dataset.batch('train', seed, i, B, T);
    return { idx: [...b.idx], targets: [...b.targets] };
  });
}

const timedMs = (r: { ms: number[] }, warmup: number) => median(r.ms.slice(warmup));
const tokensPerSec = (r: { ms: number[] }, warmup: number, tokens: number) => (tokens * 1000) / timedMs(r, warmup);
const perStep = (r: { ms: number[] }, warmup: number, tokens: number) =>
  `${fmtMs(timedMs(r, warmup))}/step, ${int(Math.round(tokensPerSec(r, warmup, tokens)))} tokens/s (first step ${fmtMs(r.ms[0])})`;
const losses = (r: { losses: number[] }) => r.losses.map((l) => l.toFixed(3)).join(' ');
const isRun = (t: PresetResult['tfjs']): t is TfjsRun => !!t && !('error' in t);
/** tfjs's step time over ours */
function speedup(r: PresetResult): string {
  if (!isRun(r.tfjs)) return '';
  const x = timedMs(r.tfjs, r.warmup) / timedMs(r.ours, r.warmup);
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`;
}

/** allocatedBytes after step 2 equals that after the last step */
const reused = (r: OursRun) => r.memory.afterStep.length < 2 || r.memory.afterStep[1] === r.memory.afterStep[r.memory.afterStep.length - 1];

const measuredTotal = (r: OursRun) => r.memory.afterStep[r.memory.afterStep.length - 1];
const off = (m: MemoryRow) => {
  const d = (m.estimate.total - measuredTotal(m.ours)) / measuredTotal(m.ours);
  return `${d >= 0 ? '+' : ''}${(100 * d).toFixed(1)}%`;
};
const sizeOf = (c: ModelConfig) =>
  c.model === 'gpt' ? `L ${c.n_layer}, C ${c.n_embd}, nh ${c.n_head}, V ${c.vocab_size}` : `E ${c.embed_size}, H ${c.hidden_size}, layers ${c.num_layers}, V ${c.vocab_size}`;

function memoryText(rows: MemoryRow[]): string {
  const lines = rows.map((m) => {
    const parts = MEMORY_PARTS.map((p) => `${p} ${formatBytes(m.ours.memory[p])} (est. ${formatBytes(m.estimate.bytes[p])})`).join(', ');
    return `${m.name.padEnd(15)} ${parts}; total ${formatBytes(measuredTotal(m.ours))} (est. ${formatBytes(m.estimate.total)}, ${off(m)}); step 2 = step ${m.ours.memory.afterStep.length}: ${reused(m.ours) ? 'yes' : 'NO'}`;
  });
  return `GPU memory per training step (BufferPool.allocatedBytes, measured (estimate)):\n${lines.join('\n')}`;
}

interface RunInfo {
  adapter: string;
  chromium: string;
  cpus: string;
  /** 1-minute load average: other processes share the cores */
  load: string;
  tfjs: string;
  started: Date;
  seed: number;
  steps: { warmup: number; ours: number; tfjs: number };
  quick: boolean;
  only?: string[];
  peers: boolean;
}

function markdown(results: PresetResult[], memory: MemoryRow[], m: RunInfo): string {
  const args = [m.quick ? '--quick' : '', m.only?.length ? `--only ${m.only.join(',')}` : '', m.peers ? '' : '--no-peers'].filter(Boolean).join(' ');
  /** the loss at step 1 and at step n, the last one both ran (the same batches and starting weights) */
  const loss = (r: PresetResult) => {
    const n = isRun(r.tfjs) ? r.tfjs.losses.length : r.ours.losses.length;
    const at = (x: { losses: number[] }) => `${x.losses[0].toFixed(3)} → ${x.losses[n - 1].toFixed(3)}`;
    return `${n}: ${at(r.ours)} / ${isRun(r.tfjs) ? at(r.tfjs) : '-'}`;
  };
  const speed = (r: { ms: number[] }, warmup: number, tokens: number) => `${fmtMs(timedMs(r, warmup))} · ${int(Math.round(tokensPerSec(r, warmup, tokens)))}`;
  const throughput = results.map((r) => {
    const { batch_size: B, block_size: T } = r.run.data;
    const t = r.tfjs;
    const tf = isRun(t) ? t : null;
    return [
      r.name,
      `${r.run.model.model}: ${sizeOf(r.run.model)}`,
      `${int(r.ours.params)} / ${tf ? int(tf.params) : '-'}`,
      `${B} × ${T}`,
      speed(r.ours, r.warmup, B * T),
      tf ? speed(tf, r.warmup, B * T) : t && 'error' in t ? `error: ${t.error}` : 'not run',
      speedup(r),
      `${fmtMs(r.ours.ms[0])} / ${tf ? fmtMs(tf.ms[0]) : '-'}`,
      loss(r),
      `${formatBytes(measuredTotal(r.ours))} / ${tf?.gpuAllocatedBytes !== undefined ? `${formatBytes(tf.gpuAllocatedBytes)} (live ${formatBytes(tf.gpuBytes ?? tf.liveBytes)})` : '-'}`,
      `${int(r.ours.dispatches)} / ${r.ours.submits}`,
    ];
  });
  const mem = memory.map((r) => [
    r.name,
    `${r.config.model}: ${sizeOf(r.config)}`,
    int(r.ours.params),
    `${r.B} × ${r.T}`,
    ...MEMORY_PARTS.map((p) => `${formatBytes(r.ours.memory[p])} (${formatBytes(r.estimate.bytes[p])})`),
    `${formatBytes(measuredTotal(r.ours))} (${formatBytes(r.estimate.total)})`,
    off(r),
    `${r.estimate.largest.name}: ${formatBytes(r.estimate.largest.bytes)}`,
    reused(r.ours) ? `yes (${r.ours.memory.afterStep.length} steps)` : `**no**: ${r.ours.memory.afterStep.map(formatBytes).join(', ')}`,
  ]);
  const table = (head: string[], rows: string[][]) => [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  return `${TRAIN_HEADING}

Produced by \`npm run bench -- train${args ? ` ${args}` : ''}\` (bench/train.ts); do not edit by hand.

- Date: ${m.started.toISOString()}
- Adapter: ${m.adapter}
- Chromium: ${m.chromium} (headless)
- CPU: ${m.cpus}; 1-minute load average ${m.load} (other processes included)
- Peer: ${m.tfjs}
- Method: one page; per preset, our model (the trainer's own step: \`accumulateGrads\` → host \`clipGrads\` → \`applyGrads\`, i.e.
  forward + backward with one readback of loss and flat gradient, global-norm clipping on the host, GpuAdamW, \`gpu.sync()\`)
  and the same architecture in tfjs (one \`tf.Variable\` per PyTorch tensor, the same parameter count (checked) and initial
  weights; \`tf.variableGrads\`, global-norm clipping on the GPU, \`tf.train.adam\` with the same betas and eps (tfjs has no
  AdamW: no weight decay), loss read back, queue drained). Same Moby-Dick batches (seed ${m.seed}), fixed lr. ${m.steps.warmup} untimed
  warm-up steps (the first compiles every pipeline: "first step"), then the median of ${m.steps.ours} timed steps (ours) and
  ${m.steps.tfjs} (tfjs). tokens/s = B·T / step time. ours/tfjs is tfjs's step time over ours: above 1 we are faster.
  The loss column checks that both train the same model: from the same weights on the same batches the losses agree
  (tfjs's Adam lacks only the weight decay, too small to show in a few steps).

### Throughput

${table(['preset', 'model', 'params ours / tfjs', 'B × T', 'ours: ms/step · tokens/s', 'tfjs: ms/step · tokens/s', 'ours/tfjs', 'first step ours / tfjs', 'n: loss at step 1 → n, ours / tfjs', 'GPU memory ours / tfjs', 'dispatches / submits per step (ours)'], throughput)}

"GPU memory" for tfjs is its webgpu backend's \`numBytesAllocatedInGPU\` (its buffer pool, free buffers included) and, in
parentheses, \`numBytesInGPU\` (buffers of live tensors) after the last step.

### GPU memory of a training step

Measured: \`BufferPool.allocatedBytes\` of a fresh device after the last step (the pool never frees: this is what the step
holds), split into weights and grads (\`GpuParams.bytes\`: one buffer per tensor; grads include the flat buffer the loss and
gradients are read back through), optimizer state (what \`GpuAdamW\` allocated: exp_avg and exp_avg_sq per tensor) and the
rest: activations and scratch (the batch, what forward keeps for backward, backward's temporaries). In parentheses the
estimate of \`estimateStepMemory(config, B, T)\` (shared/models/memory.ts), which replays a step through the pool's size
classes; it leaves out kernels' small scratch (split-K partial sums and the like). The last column checks that buffers are
reused: \`allocatedBytes\` after step 2 equals that after the last step. The trainer refuses a config whose largest buffer
exceeds the device's per-buffer limit or whose total exceeds what the device can hold (message names the tensor, its size,
the limit and what to shrink).

${table(['config', 'model', 'params', 'B × T', 'weights', 'grads (+ flat readback)', 'optimizer (AdamW m, v)', 'activations + scratch', 'total', 'estimate off by', 'largest buffer (estimate)', 'step 2 = last step'], mem)}
`;
}
