// The run's loss chart (uPlot): train loss per optimizer step as a line, val loss as points joined by a line.
// Seeded with the run's history from the status API when the page joins, then extended by the coordinator's
// 'progress' events. Points are keyed by step, so a progress event that raced the history fetch is not doubled.
// Redraws are coalesced to one per animation frame; the container's data-points / data-val-points say how many
// points uPlot holds (for tests and the curious).
import uPlot from 'uplot';
import type { Progress } from '../../shared/protocol.ts';

/** the run's history rows (GET /api/runs/:id/public), as far as the chart reads them */
export interface RunHistory {
  history: { step: number; loss: number }[];
  valHistory: { step: number; valLoss: number }[];
}

const HEIGHT = 300;

export class LossChart {
  private readonly train = new Map<number, number>();
  private readonly val = new Map<number, number>();
  private readonly plot: uPlot;
  private queued = false;

  constructor(private readonly el: HTMLElement) {
    const opts: uPlot.Options = {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [{ label: 'optimizer step' }, { label: 'loss' }],
      series: [
        { label: 'step' },
        { label: 'train loss', stroke: '#2563eb', width: 1.5, spanGaps: true, points: { show: false } },
        { label: 'val loss', stroke: '#cf222e', width: 2, spanGaps: true, points: { show: true, size: 7, fill: '#cf222e' } },
      ],
    };
    this.plot = new uPlot(opts, [[], [], []], el);
    new ResizeObserver(() => this.plot.setSize({ width: this.width(), height: HEIGHT })).observe(el);
  }

  private width(): number {
    return Math.max(280, this.el.clientWidth);
  }

  /** forget everything (another run) */
  reset(): void {
    this.train.clear();
    this.val.clear();
    this.redraw();
  }

  seed(h: RunHistory): void {
    for (const r of h.history) this.train.set(r.step, r.loss);
    for (const r of h.valHistory) this.val.set(r.step, r.valLoss);
    this.redraw();
  }

  add(p: Progress): void {
    if (p.loss !== undefined && p.step > 0) this.train.set(p.step, p.loss);
    if (p.valLoss !== undefined) this.val.set(p.step, p.valLoss);
    this.redraw();
  }

  private redraw(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      const steps = [...new Set([...this.train.keys(), ...this.val.keys()])].sort((a, b) => a - b);
      this.plot.setData([steps, steps.map((s) => this.train.get(s) ?? null), steps.map((s) => this.val.get(s) ?? null)]);
      const count = (i: number) => Array.from(this.plot.data[i] as ArrayLike<number | null | undefined>).filter((v) => v != null).length;
      this.el.dataset.points = String(count(1));
      this.el.dataset.valPoints = String(count(2));
    });
  }
}
