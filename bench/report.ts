// Turning row results into the printed table, bench/RESULTS.md and the "where we are not on par" list.
// Rates: GFLOPS for compute-bound rows, GB/s (minimal traffic) for memory-bound ones; a ratio ours/peer is our
// rate over the peer's (= peer time / our time): above 1 we are faster.
import { isCompute, type Work } from './cases.ts';
import { LIB_NAMES, type Lib, type LibRun, type RowResult } from './result.ts';

/** ours/peer below this counts as not on par */
export const PAR = 0.9;

export function rate(work: Work, ms: number): { value: number; unit: string } {
  return isCompute(work) ? { value: work.flops / ms / 1e6, unit: 'GFLOPS' } : { value: work.bytes / ms / 1e6, unit: 'GB/s' };
}

const num = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));
export const fmtMs = (ms: number) => (ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(ms >= 0.1 ? 0 : 1)} µs`);
export const fmtRate = (work: Work, ms: number) => {
  const r = rate(work, ms);
  return `${num(r.value)} ${r.unit}`;
};

function cell(r: RowResult, lib: Lib): string {
  const run = r.runs[lib];
  if (!run) return '';
  if (run.status === 'missing') return lib === 'ours' ? run.message! : 'n/a';
  if (run.status === 'error') return 'error (below)';
  return `${fmtMs(run.timing!.ms)} · ${fmtRate(r.work, run.timing!.ms)}`;
}

const okMs = (run?: LibRun) => (run?.status === 'ok' ? run.timing!.ms : null);

/** ours/peer rate ratio, or null when either is missing */
export function ratio(r: RowResult, peer: Lib): number | null {
  const o = okMs(r.runs.ours);
  const p = okMs(r.runs[peer]);
  return o && p ? p / o : null;
}

const fmtRatio = (x: number | null) => (x === null ? '' : `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`);
const fmtDiff = (r: RowResult) => {
  const d = Object.values(r.diff);
  return d.length ? Math.max(...d).toExponential(0) : '';
};

const oneLine = (s: string) => (s.length > 400 ? `${s.slice(0, 400)}…` : s).replace(/\s+/g, ' ');

export interface Column {
  head: string;
  width: number;
  get(r: RowResult): string;
}

/** gpuClock: add a column with our time on the GPU's own clock (bench/gpu.ts) */
export function columns(peers: Lib[], gpuClock = false): Column[] {
  const cols: Column[] = [
    { head: 'op', width: 13, get: (r) => r.op },
    { head: 'pass', width: 8, get: (r) => r.pass },
    { head: 'size', width: 24, get: (r) => r.size },
    { head: 'note', width: 11, get: (r) => r.note ?? '' },
    { head: gpuClock ? 'ours (wall clock)' : LIB_NAMES.ours, width: 24, get: (r) => cell(r, 'ours') },
  ];
  if (gpuClock) {
    const gpuCell = (r: RowResult) => {
      const ms = r.runs.ours?.timing?.gpuMs;
      return ms === undefined ? '' : `${fmtMs(ms)} · ${fmtRate(r.work, ms)}`;
    };
    cols.push({ head: 'ours (GPU clock)', width: 24, get: gpuCell });
  }
  for (const p of peers) cols.push({ head: LIB_NAMES[p], width: 24, get: (r) => cell(r, p) });
  for (const p of peers) cols.push({ head: `ours/${LIB_NAMES[p]}`, width: 12, get: (r) => fmtRatio(ratio(r, p)) });
  if (peers.length) cols.push({ head: 'max Δ', width: 6, get: fmtDiff });
  return cols;
}

export const textLine = (cols: Column[], cells: string[]) => cols.map((c, i) => cells[i].padEnd(c.width)).join(' ').trimEnd();
export const textHeader = (cols: Column[]) => textLine(cols, cols.map((c) => c.head));
export const textRow = (cols: Column[], r: RowResult) => textLine(cols, cols.map((c) => c.get(r)));

export function markdownTable(cols: Column[], rows: RowResult[]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(cols.map((c) => c.head)), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => c.get(r))))].join('\n');
}

/** rows below par against a peer (worst first), plus rows our side cannot run yet and every error */
export function findings(rows: RowResult[], peers: Lib[]): { behind: string[]; missing: string[]; errors: string[]; disagree: string[] } {
  const behind: { worst: number; text: string }[] = [];
  const missing: string[] = [];
  const errors: string[] = [];
  const disagree: string[] = [];
  for (const r of rows) {
    const name = `${r.op} ${r.pass} ${r.size}${r.note ? ` (${r.note})` : ''}`;
    const ours = r.runs.ours;
    if (ours?.status === 'missing') missing.push(name);
    for (const [lib, run] of Object.entries(r.runs) as [Lib, LibRun][]) if (run.status === 'error') errors.push(`${name}, ${LIB_NAMES[lib]}: ${oneLine(run.message ?? '')}`);
    for (const [lib, d] of Object.entries(r.diff) as [Lib, number][]) {
      if (!(d <= 1e-3)) disagree.push(`${name}: ${LIB_NAMES[lib]} differs from ours by ${d.toExponential(1)} (normwise)`);
    }
    const parts = peers
      .map((p) => ({ p, x: ratio(r, p) }))
      .filter((e): e is { p: Lib; x: number } => e.x !== null && e.x < PAR)
      .map(({ p, x }) => ({ x, text: `${fmtRatio(x)} ${LIB_NAMES[p]} (${fmtRate(r.work, okMs(r.runs.ours)!)} vs ${fmtRate(r.work, okMs(r.runs[p])!)})` }));
    if (parts.length) behind.push({ worst: Math.min(...parts.map((e) => e.x)), text: `${name}: ${parts.map((e) => e.text).join('; ')}` });
  }
  behind.sort((a, b) => a.worst - b.worst);
  return { behind: behind.map((b) => b.text), missing, errors, disagree };
}
