// What one library's run of one benchmark row comes back as (plain data: it crosses the page boundary).
import type { BenchRow, Work } from './cases.ts';
import type { Timing } from './timing.ts';

export type Lib = 'ours' | 'tfjs' | 'jax';
export const LIB_NAMES: Record<Lib, string> = { ours: 'ours', tfjs: 'tfjs', jax: 'jax-js' };

export interface LibRun {
  /** missing: our op is not implemented yet, or the peer has no version of this row */
  status: 'ok' | 'missing' | 'error';
  message?: string;
  timing?: Timing;
}

/** a run plus the values of one untimed call, read back; the values stay in the page */
export interface LibOutcome extends LibRun {
  values?: Record<string, Float32Array>;
}

export interface RowResult {
  key: string;
  op: string;
  pass: BenchRow['pass'];
  size: string;
  note?: string;
  work: Work;
  runs: Partial<Record<Lib, LibRun>>;
  /** normwise relative difference of each peer's result from ours, max|peer − ours| / max|ours| */
  diff: Partial<Record<Lib, number>>;
}

export function rowResult(row: BenchRow): RowResult {
  return { key: row.key, op: row.op, pass: row.pass, size: row.size, note: row.note, work: row.work, runs: {}, diff: {} };
}

/** the run without its read-back values, for the result table */
export const bare = ({ status, message, timing }: LibOutcome): LibRun => ({ status, message, timing });

export const errorRun = (e: unknown): LibOutcome => ({ status: 'error', message: e instanceof Error ? e.message : String(e) });

/** no read-back value may be NaN or infinite: the check that the timed work computed something */
export function checkFinite(values: Record<string, Float32Array>): string | null {
  for (const [k, v] of Object.entries(values)) {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return `${k}[${i}] is ${v[i]} in the read-back result`;
  }
  return null;
}
