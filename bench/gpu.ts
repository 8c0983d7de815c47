// The kernel benchmark's rows for a real GPU, our kernels only, in Node through Dawn (client/host/node-gpu.ts):
// the same table (bench/cases.ts) and timing (bench/timing.ts) as the browser benchmark, plus the 'gpu' tier
// (matmul up to 4096³, model-scale sizes). Prints each row as it finishes, then a markdown table.
//
//   npx esbuild bench/gpu.ts --bundle --platform=node --format=esm --external:webgpu --loader:.wgsl=text --outfile=.gpu/bench.mjs
//   bash .gpu/run.sh node .gpu/bench.mjs [--quick] [--only matmul,gelu] [--runs 7] [--min-ms 25] [--budget 170]
//   here, on SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node .gpu/bench.mjs --quick
import { cpus } from 'node:os';
import { openNodeGpu } from '../client/host/node-gpu.ts';
import { hostInputs, selectRows } from './cases.ts';
import { runOurs } from './ours.ts';
import { columns, markdownTable, textHeader, textRow } from './report.ts';
import { bare, rowResult, type RowResult } from './result.ts';
import { GPU_TIMING, type TimingOptions } from './timing.ts';

const USAGE = 'usage: node .gpu/bench.mjs [--quick] [--only ops] [--runs n] [--min-ms ms] [--seed n] [--budget seconds]';

function parseArgs(argv: string[]) {
  const o = { quick: false, only: [] as string[], runs: GPU_TIMING.runs, minMs: GPU_TIMING.minMs, seed: (Math.random() * 2 ** 31) >>> 0, budget: 170 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const count = () => {
      const v = Number(value());
      if (!(Number.isInteger(v) && v >= 0)) throw new Error(`${a} takes a whole number, got '${argv[i]}'`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--runs') o.runs = Math.max(1, count());
    else if (a === '--min-ms') o.minMs = count();
    else if (a === '--seed') o.seed = count();
    else if (a === '--budget') o.budget = count();
    else throw new Error(`unknown argument '${a}'\n${USAGE}`);
  }
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows = selectRows(o.quick ? 'quick' : 'gpu', o.only);
  const timing: TimingOptions = { ...GPU_TIMING, runs: o.runs, minMs: o.minMs };
  const g = await openNodeGpu();
  const t0 = performance.now();
  try {
    console.log(`gradswarm kernel benchmark (Node, Dawn): ${rows.length} rows on ${g.adapterName}${g.isFallback ? ' (software fallback adapter)' : ''}`);
    console.log(`${cpus().length} CPUs; max storage binding ${(g.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB; features ${[...g.device.features].join(', ')}`);
    console.log(`median of ${timing.runs} timed runs of ≥ ${timing.minMs} ms after warm-up; seed ${o.seed}; time budget ${o.budget} s`);
    console.log(
      g.device.features.has('timestamp-query')
        ? 'wall clock: record + submit + wait, per call; GPU clock: timestamps around the submit (device time only)\n'
        : 'this device has no timestamp-query: wall clock only (record + submit + wait, per call)\n',
    );
    const cols = columns([], true);
    console.log(textHeader(cols));
    const results: RowResult[] = [];
    for (const [i, row] of rows.entries()) {
      const r = rowResult(row);
      if ((performance.now() - t0) / 1000 > o.budget) r.runs.ours = { status: 'missing', message: 'skipped: over the time budget' };
      else r.runs.ours = bare(await runOurs(g, row, hostInputs(row, o.seed + i), o.seed, timing));
      results.push(r);
      console.log(textRow(cols, r));
      if (g.lost) throw new Error(g.lost);
    }
    const errors = results.filter((r) => r.runs.ours?.status === 'error');
    for (const r of errors) console.log(`\nerror in ${r.key}: ${r.runs.ours!.message}`);
    console.log(`\n${markdownTable(cols, results)}\n\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
    if (errors.length) process.exitCode = 1;
  } finally {
    g.destroy();
  }
}

main().catch((e: Error) => {
  console.error(`bench/gpu: ${e.message}`);
  process.exit(1);
});
