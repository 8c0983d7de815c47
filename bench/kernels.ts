// Node side of `gradswarm bench kernels`: opens bench/kernels-page.ts in headless Chromium, runs the table's
// rows one by one (printing each as it finishes), then writes the markdown report (bench/RESULTS.md).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { openBrowserPage } from '../client/host/browser.ts';
import { selectRows } from './cases.ts';
import { columns, findings, markdownTable, PAR, textHeader, textRow } from './report.ts';
import { rowResult, type Lib, type RowResult } from './result.ts';
import { writeKernelReport } from './results-file.ts';
import { BROWSER_TIMING, type TimingOptions } from './timing.ts';

export interface KernelBenchOptions {
  only?: string[];
  quick?: boolean;
  /** markdown report path (default bench/RESULTS.md) */
  out?: string;
  /** false: our kernels only */
  peers?: boolean;
  runs?: number;
  minMs?: number;
  seed?: number;
}

/** a row that takes longer than this leaves the page in an unknown state: the benchmark stops there */
const ROW_TIMEOUT_MS = 20 * 60_000;

const version = (root: string, pkg: string) => {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;
  } catch {
    return '?';
  }
};

export async function runKernelBench(root: string, o: KernelBenchOptions): Promise<void> {
  const rows = selectRows(o.quick ? 'quick' : 'full', o.only);
  const peers: Lib[] = o.peers === false ? [] : ['tfjs', 'jax'];
  const timing: TimingOptions = { ...BROWSER_TIMING, ...(o.runs ? { runs: o.runs } : {}), ...(o.minMs ? { minMs: o.minMs } : {}) };
  const seed = o.seed ?? (Math.random() * 2 ** 31) >>> 0;
  const out = o.out ?? join(root, 'bench', 'RESULTS.md');
  const bp = await openBrowserPage(join(root, 'bench', 'kernels-page.ts'), { log: (l) => process.env.GRADSWARM_DEBUG && console.error(l) });
  const call = <T>(fn: string, ...args: unknown[]) =>
    bp.page.evaluate(([f, a]) => (window as any).gradswarm[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>;
  const results: RowResult[] = [];
  const started = new Date();
  let stopped: string | null = null;
  try {
    const info = await call<{ adapter: string; fallback: boolean; cores: number; userAgent: string; tfjs: string }>('info');
    const chromium = bp.page.context().browser()?.version() ?? '?';
    const cpu = cpus();
    const machine = {
      adapter: `${info.adapter}${info.fallback ? ' (software fallback adapter)' : ''}`,
      chromium,
      cpus: `${cpu.length} × ${cpu[0]?.model ?? '?'} (browser reports ${info.cores})`,
      peers: peers.length ? `@tensorflow/tfjs-backend-webgpu ${version(root, '@tensorflow/tfjs-backend-webgpu')}, @jax-js/jax ${version(root, '@jax-js/jax')} (jit)` : 'none (--no-peers)',
    };
    console.log(`gradswarm kernel benchmark: ${rows.length} rows on ${machine.adapter}, Chromium ${chromium}, ${machine.cpus}`);
    console.log(`peers: ${machine.peers}; median of ${timing.runs} timed runs of ≥ ${timing.minMs} ms after warm-up; seed ${seed}\n`);
    const cols = columns(peers);
    console.log(textHeader(cols));
    for (const [i, row] of rows.entries()) {
      let r: RowResult;
      try {
        r = await withTimeout(call<RowResult>('runRow', row.key, seed + i, timing, peers), ROW_TIMEOUT_MS, `row '${row.key}' took over ${ROW_TIMEOUT_MS / 60_000} minutes`);
      } catch (e) {
        r = rowResult(row);
        r.runs.ours = { status: 'error', message: (e as Error).message.split('\n')[0] };
        if (bp.page.isClosed() || /timed out|took over|Target.*closed|crash/i.test((e as Error).message)) stopped = (e as Error).message.split('\n')[0];
      }
      results.push(r);
      console.log(textRow(cols, r));
      if (stopped) break;
    }
    const report = markdown(results, cols, peers, { ...machine, started, seed, timing, quick: !!o.quick, only: o.only, stopped });
    writeKernelReport(out, report); // keeps the training section of `bench train`
    console.log(`\n${report.slice(report.indexOf('## Where'))}`);
    console.log(`wrote ${out}`);
  } finally {
    await bp.close();
  }
  if (stopped) {
    console.error(`bench: stopped early: ${stopped}`);
    process.exitCode = 1;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

interface RunInfo {
  adapter: string;
  chromium: string;
  cpus: string;
  peers: string;
  started: Date;
  seed: number;
  timing: TimingOptions;
  quick: boolean;
  only?: string[];
  stopped: string | null;
}

function markdown(results: RowResult[], cols: ReturnType<typeof columns>, peers: Lib[], m: RunInfo): string {
  const f = findings(results, peers);
  const list = (items: string[], none: string) => (items.length ? items.map((s) => `- ${s}`).join('\n') : `- ${none}`);
  const args = [m.quick ? '--quick' : '', m.only?.length ? `--only ${m.only.join(',')}` : ''].filter(Boolean).join(' ');
  return `# Kernel benchmark

Produced by \`npm run bench -- kernels${args ? ` ${args}` : ''}\` (bench/kernels.ts); do not edit by hand.

- Date: ${m.started.toISOString()}
- Adapter: ${m.adapter}
- Chromium: ${m.chromium} (headless)
- CPU: ${m.cpus}
- Peers: ${m.peers}
- Method: all libraries in one page, on the same fresh random inputs (seed ${m.seed}); inputs live on the GPU
  before timing. Per row and library: warm-up calls (they compile pipelines), one untimed call read back and
  compared (max Δ: normwise difference of a peer's result from ours) and checked for NaN, then the median of
  ${m.timing.runs} timed runs; a run repeats the call until it lasts ≥ ${m.timing.minMs} ms (at most ${m.timing.maxReps} calls) and ends
  when the device has finished (ours: record + \`g.sync()\`; tfjs: submit + \`onSubmittedWorkDone\`; jax-js:
  \`blockUntilReady\` on every result). Backward rows: ours is the op's GPU backward; the peers differentiate the
  same forward with their own autodiff (tf.grads; jit(grad)).
- Rates: GFLOPS for matmul, attention and the recurrent layers (nominal flops: 2·M·N·K; attention over the
  unmasked pairs; backward 2.5× / 2× forward); GB/s for the rest (minimal traffic: each input read once, each
  output written once). ours/peer is our rate over the peer's: above 1 we are faster.
${m.stopped ? `\n**Stopped early:** ${m.stopped}\n` : ''}
${markdownTable(cols, results)}

## Where we are not on par (ours/peer < ${PAR})
${peers.length ? list(f.behind, 'nowhere: every row is at least on par') : '- not measured (--no-peers)'}

## Ops not implemented yet
${list(f.missing, 'none')}
${f.disagree.length ? `\n## Results that differ between libraries\n${list(f.disagree, '')}\n` : ''}${f.errors.length ? `\n## Errors\n${list(f.errors, '')}\n` : ''}`;
}
