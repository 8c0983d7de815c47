// Browser side of `gradswarm bench kernels`: one page holds our Gpu, tfjs's webgpu backend and jax-js's webgpu
// device; Node (bench/kernels.ts) asks it for one row at a time. Each library opens its own GPU device.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import * as jax from '@jax-js/jax';
import { openGpu } from '../client/runtime/index.ts';
import type { Gpu } from '../client/runtime/gpu.ts';
import { relError } from '../shared/ops.ts';
import { hostInputs, rowByKey } from './cases.ts';
import { runOurs } from './ours.ts';
import { runJax, runTfjs } from './peers.ts';
import { bare, rowResult, type Lib, type LibOutcome, type RowResult } from './result.ts';
import type { TimingOptions } from './timing.ts';

let gpu: Gpu | null = null;
const ensureGpu = async () => (gpu ??= await openGpu(navigator.gpu));

// a peer that fails to start is reported in every row rather than stopping the benchmark
let tfReady: Promise<string | null> | null = null;
let jaxReady: Promise<string | null> | null = null;
const failed = (e: unknown) => `could not start: ${e instanceof Error ? e.message : String(e)}`;
const startTfjs = () =>
  (tfReady ??= (async () => {
    if (!(await tf.setBackend('webgpu'))) return 'could not start its webgpu backend';
    await tf.ready();
    return null;
  })().catch(failed));
const startJax = () =>
  (jaxReady ??= (async () => {
    if (!(await jax.init('webgpu')).includes('webgpu')) return 'could not start its webgpu device';
    jax.defaultDevice('webgpu');
    return null;
  })().catch(failed));

const api = {
  async info() {
    const g = await ensureGpu();
    return { adapter: g.adapterName, fallback: g.isFallback, cores: navigator.hardwareConcurrency, userAgent: navigator.userAgent, tfjs: tf.version_core };
  },
  /** one row: ours, then the peers asked for, on the same fresh inputs; plain data back */
  async runRow(key: string, seed: number, timing: TimingOptions, peers: Lib[]): Promise<RowResult> {
    const row = rowByKey(key);
    const host = hostInputs(row, seed);
    const res = rowResult(row);
    const outcomes: Partial<Record<Lib, LibOutcome>> = {};
    outcomes.ours = await runOurs(await ensureGpu(), row, host, seed, timing);
    if (peers.includes('tfjs')) {
      const err = await startTfjs();
      outcomes.tfjs = err ? { status: 'error', message: err } : await runTfjs(tf, row, host, seed, timing);
    }
    if (peers.includes('jax')) {
      const err = await startJax();
      outcomes.jax = err ? { status: 'error', message: err } : await runJax(jax, row, host, seed, timing);
    }
    const ours = outcomes.ours.values;
    for (const [lib, o] of Object.entries(outcomes) as [Lib, LibOutcome][]) {
      res.runs[lib] = bare(o);
      if (lib === 'ours' || !ours || !o.values) continue;
      res.diff[lib] = Math.max(...Object.keys(ours).map((k) => (o.values![k] ? relError(o.values![k], ours[k]) : Infinity)));
    }
    return res;
  },
};

(window as unknown as { gradswarm: typeof api }).gradswarm = api;
