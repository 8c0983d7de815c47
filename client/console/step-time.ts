// Where a step's time went, from its history row: compute (the workers' mean compute per lease), aggregate (the
// coordinator's optimizer step) and wait, the rest (transfers, queueing, workers idle or slower than others).
import type { StepRow } from './api.ts';

export interface StepTime {
  compute: number;
  wait: number;
  aggregate: number;
}

/** one step in ms: wait = ms − compute − aggregate, at least 0 (compute is a mean over leases run in parallel) */
export function breakdown(r: StepRow): StepTime {
  const compute = Math.max(0, r.computeMs ?? 0);
  const aggregate = Math.max(0, r.aggregateMs);
  return { compute, wait: Math.max(0, r.ms - compute - aggregate), aggregate };
}

/** the mean breakdown of the last `n` steps (by step number), or undefined without steps */
export function meanBreakdown(rows: Iterable<StepRow>, n: number): (StepTime & { steps: number }) | undefined {
  const last = [...rows].sort((a, b) => a.step - b.step).slice(-n);
  if (!last.length) return undefined;
  const sum: StepTime = { compute: 0, wait: 0, aggregate: 0 };
  for (const r of last) {
    const b = breakdown(r);
    sum.compute += b.compute;
    sum.wait += b.wait;
    sum.aggregate += b.aggregate;
  }
  const k = last.length;
  return { compute: sum.compute / k, wait: sum.wait / k, aggregate: sum.aggregate / k, steps: k };
}
