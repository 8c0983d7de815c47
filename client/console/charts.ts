// The run's charts (uPlot), each over optimizer steps: the loss (train as a line, validation as joined points),
// tokens per second, and the step time split into compute, wait and aggregate, stacked. Rows are keyed by step, so
// the history fetched from the API and the live events merge without doubling; redraws are coalesced to one per
// animation frame. The container's data-points says how many steps the first series has (for tests).
import uPlot from 'uplot';
import type { StepRow, ValRow } from './api.ts';
import { breakdown } from './step-time.ts';

interface SeriesSpec {
  label: string;
  stroke: string;
  fill?: string;
  points?: boolean;
}

/** whole steps on the x axis */
const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];

/** from 0 to a little above the largest value */
const fromZero = (col: (number | null)[]): [number, number] => [0, col.reduce<number>((m, v) => (v != null && v > m ? v : m), 1e-9) * 1.08];

/** from 0 to twice the 90th percentile at most: one slow step (the first, which compiles the kernels) does not flatten the rest */
function clipOutliers(col: (number | null)[]): [number, number] {
  const v = col.filter((x): x is number => x != null).sort((a, b) => a - b);
  if (!v.length) return [0, 1];
  const p90 = v[Math.floor(0.9 * (v.length - 1))];
  return [0, Math.max(1e-9, Math.min(v[v.length - 1], 2 * p90)) * 1.08];
}

class StepChart {
  private readonly rows = new Map<number, (number | null)[]>();
  private readonly plot: uPlot;
  private queued = false;

  constructor(
    private readonly el: HTMLElement,
    private readonly specs: SeriesSpec[],
    yLabel: string,
    private readonly height: number,
    opts: { legend?: boolean; yRange?: (first: (number | null)[]) => [number, number] } = {},
  ) {
    const fmt = (v: number | null) => (v == null ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
    const plotOpts: uPlot.Options = {
      width: this.width(),
      height,
      legend: { show: opts.legend ?? false },
      scales: { x: { time: false }, ...(opts.yRange && { y: { range: (u: uPlot) => opts.yRange!(u.data[1] as (number | null)[]) } }) },
      axes: [
        { label: 'step', size: 34, labelSize: 18, incrs: STEP_INCRS },
        { label: yLabel, size: 52, labelSize: 18 },
      ],
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: 'step' },
        ...specs.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          fill: s.fill,
          width: s.points ? 2 : 1.5,
          spanGaps: true,
          points: s.points ? { show: true, size: 6, fill: s.stroke } : { show: false },
          value: (_u: uPlot, v: number | null) => fmt(v),
        })),
      ],
    };
    this.plot = new uPlot(plotOpts, [[], ...specs.map(() => [])] as uPlot.AlignedData, el);
    new ResizeObserver(() => {
      if (el.clientWidth > 0) this.plot.setSize({ width: this.width(), height: this.height });
    }).observe(el);
  }

  private width(): number {
    return Math.max(240, this.el.clientWidth);
  }

  clear(): void {
    this.rows.clear();
    this.redraw();
  }

  /** sets the given series of one step (undefined leaves a value as it was) */
  set(step: number, values: (number | null | undefined)[]): void {
    const row = this.rows.get(step) ?? this.specs.map(() => null);
    values.forEach((v, i) => {
      if (v !== undefined) row[i] = v;
    });
    this.rows.set(step, row);
    this.redraw();
  }

  private redraw(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      const steps = [...this.rows.keys()].sort((a, b) => a - b);
      const cols = this.specs.map((_, i) => steps.map((s) => this.rows.get(s)![i]));
      this.plot.setData([steps, ...cols] as uPlot.AlignedData);
      this.el.dataset.points = String(cols[0].filter((v) => v != null).length);
    });
  }
}

export class LossChart {
  private readonly chart: StepChart;
  constructor(el: HTMLElement) {
    this.chart = new StepChart(
      el,
      [
        { label: 'train', stroke: '#2563eb' },
        { label: 'val', stroke: '#cf222e', points: true },
      ],
      'loss (nats/char)',
      250,
      { legend: true },
    );
  }
  clear = () => this.chart.clear();
  step = (r: StepRow) => {
    if (r.step > 0) this.chart.set(r.step, [r.loss, undefined]);
  };
  val = (r: ValRow) => this.chart.set(r.step, [undefined, r.valLoss]);
}

export class ThroughputChart {
  private readonly chart: StepChart;
  constructor(el: HTMLElement) {
    this.chart = new StepChart(el, [{ label: 'tokens/s', stroke: '#1a7f37', fill: 'rgba(26,127,55,0.08)' }], 'tokens/s', 125, { yRange: fromZero });
  }
  clear = () => this.chart.clear();
  step = (r: StepRow) => this.chart.set(r.step, [r.tokensPerSec]);
}

/** the step-time colours, for the caption that stands in for the legend */
export const TIME_COLOURS = { compute: '#2563eb', wait: '#bf8700', aggregate: '#8250df' };

/** stacked: each series is drawn as the running total up to it, later (lower) ones painted over earlier ones */
export class StepTimeChart {
  private readonly chart: StepChart;
  constructor(el: HTMLElement) {
    this.chart = new StepChart(
      el,
      [
        { label: 'aggregate', stroke: TIME_COLOURS.aggregate, fill: `${TIME_COLOURS.aggregate}66` },
        { label: 'wait', stroke: TIME_COLOURS.wait, fill: `${TIME_COLOURS.wait}55` },
        { label: 'compute', stroke: TIME_COLOURS.compute, fill: `${TIME_COLOURS.compute}55` },
      ],
      'ms per step',
      125,
      { yRange: clipOutliers },
    );
  }
  clear = () => this.chart.clear();
  step = (r: StepRow) => {
    const b = breakdown(r);
    // running totals, in the series' order: all three, compute + wait, compute
    this.chart.set(r.step, [b.compute + b.wait + b.aggregate, b.compute + b.wait, b.compute]);
  };
}
