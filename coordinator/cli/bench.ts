// `gradswarm bench kernels [--only ops] [--quick] [--out FILE] [--no-peers]`: our kernels against tfjs-webgpu and
// jax-js in one headless Chromium page (bench/kernels.ts). For a real GPU without a browser see bench/gpu.ts.
import { runKernelBench } from '../../bench/kernels.ts';
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
  if (what !== 'kernels') throw new Error(`unknown benchmark '${what}' (known: kernels)`);
  for (const [flag, v] of [['--runs', o.runs], ['--min-ms', o.minMs], ['--seed', o.seed]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= (flag === '--seed' ? 0 : 1))) throw new Error(`${flag} takes a positive whole number, got '${v}'`);
  }
  await runKernelBench(ROOT, {
    only: o.only?.split(',').map((s) => s.trim()).filter(Boolean),
    quick: o.quick,
    out: o.out,
    peers: o.peers,
    runs: o.runs,
    minMs: o.minMs,
    seed: o.seed,
  });
}
