// `gradswarm bench kernels|train [--only ...] [--quick] [--out FILE] [--no-peers]`: in one headless Chromium page,
// our kernels against tfjs-webgpu and jax-js (bench/kernels.ts), or full training steps of our models against the
// same models in tfjs, with the GPU memory a step holds (bench/train.ts). For a real GPU without a browser see
// bench/gpu.ts. `gradswarm bench swarm [--only 1M,10M:64,volunteers] [--quick]`: the coordinator's ingest, per-step
// overhead and memory under simulated workers, and the default run's samples/s with 1 and 2 real volunteers
// (bench/swarm.ts). `gradswarm bench learning`: the four families' learning table and plot from their training
// metrics (bench/learning.ts). `gradswarm bench reliability [--only parts] [--quick] [--seed N] [--out FILE]`: the
// attack matrix, the faults and the fuzz against live coordinators; writes docs/RELIABILITY.md (bench/reliability.ts).
import { runKernelBench } from '../../bench/kernels.ts';
import { runLearningReport } from '../../bench/learning.ts';
import { runReliabilityBench } from '../../bench/reliability.ts';
import { runSwarmBench } from '../../bench/swarm.ts';
import { runTrainBench } from '../../bench/train.ts';
import { ROOT } from './root.ts';

export interface BenchFlags {
  only?: string;
  quick?: boolean;
  out?: string;
  peers: boolean;
  runs?: number;
  minMs?: number;
  seed?: number;
}

export async function benchCommand(what: string, o: BenchFlags): Promise<void> {
  if (what === 'learning') {
    // the learning table and plot from the training runs' metrics (bench/learning.ts)
    await runLearningReport(ROOT, { out: o.out });
    return;
  }
  if (what === 'reliability') {
    if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0)) throw new Error(`--seed takes a whole number, got '${o.seed}'`);
    const only = o.only?.split(',').map((s) => s.trim()).filter(Boolean);
    await runReliabilityBench(ROOT, { quick: o.quick, out: o.out, seed: o.seed, only });
    return;
  }
  if (what !== 'kernels' && what !== 'train' && what !== 'swarm') throw new Error(`unknown benchmark '${what}' (known: kernels, train, swarm, learning, reliability)`);
  for (const [flag, v] of [['--runs', o.runs], ['--min-ms', o.minMs], ['--seed', o.seed]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= (flag === '--seed' ? 0 : 1))) throw new Error(`${flag} takes a positive whole number, got '${v}'`);
  }
  const only = o.only?.split(',').map((s) => s.trim()).filter(Boolean);
  if (what === 'swarm') {
    const extra = [o.runs !== undefined && '--runs', o.minMs !== undefined && '--min-ms', o.seed !== undefined && '--seed', !o.peers && '--no-peers'].filter(Boolean);
    if (extra.length) throw new Error(`${extra.join(', ')}: not options of \`bench swarm\` (it takes --only, --quick and --out)`);
    await runSwarmBench(ROOT, { only, quick: o.quick, out: o.out });
    return;
  }
  if (what === 'train') {
    if (o.minMs !== undefined) throw new Error('--min-ms is for `bench kernels`: `bench train` times whole steps (--runs sets how many)');
    await runTrainBench(ROOT, { only, quick: o.quick, out: o.out, peers: o.peers, runs: o.runs, seed: o.seed });
    return;
  }
  await runKernelBench(ROOT, { only, quick: o.quick, out: o.out, peers: o.peers, runs: o.runs, minMs: o.minMs, seed: o.seed });
}
