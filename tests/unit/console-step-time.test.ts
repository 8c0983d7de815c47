// The console's step-time split (client/console/step-time.ts): wait is what compute and aggregate leave of the
// step, never negative; the mean covers the newest steps by number, whatever order they came in.
import { describe, expect, it } from 'vitest';
import type { StepRow } from '../../client/console/api.ts';
import { breakdown, meanBreakdown } from '../../client/console/step-time.ts';

const row = (step: number, ms: number, computeMs: number | undefined, aggregateMs: number): StepRow => ({
  step,
  ms,
  computeMs,
  aggregateMs,
  loss: 3,
  lr: 1e-3,
  gradNorm: 1,
  samples: 8,
  tokensPerSec: 100,
  t: step,
});

describe('console step time', () => {
  it('splits a step into compute, wait and aggregate', () => {
    expect(breakdown(row(1, 100, 60, 5))).toEqual({ compute: 60, wait: 35, aggregate: 5 });
    // compute is a mean over leases that may overlap the aggregation: wait clamps at 0
    expect(breakdown(row(2, 50, 48, 5))).toEqual({ compute: 48, wait: 0, aggregate: 5 });
    // a record without computeMs (older runs): all of it but the aggregation is wait
    expect(breakdown(row(3, 40, undefined, 4))).toEqual({ compute: 0, wait: 36, aggregate: 4 });
  });

  it('averages the newest n steps', () => {
    const rows = [row(3, 30, 10, 0), row(1, 1000, 0, 0), row(2, 10, 10, 0)];
    expect(meanBreakdown(rows, 2)).toEqual({ compute: 10, wait: 10, aggregate: 0, steps: 2 });
    expect(meanBreakdown([], 20)).toBeUndefined();
  });
});
