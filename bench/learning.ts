// `gradswarm bench learning`: the learning table of the four family presets on Moby-Dick (equal steps, about equal
// parameter counts) and its plot, from the metrics lines training writes (`gradswarm train` → out_dir/metrics.jsonl;
// bench/learn-gpu.ts → <preset>.jsonl). Validation loss per step is a property of the model, data and seed, not of
// the adapter (the runs on SwiftShader and on an H200 agree to 4 decimals), so one table of val loss by step is
// shown, with each machine's wall time and tokens/s beside it. The plot (val and train loss against step) is drawn
// with uPlot in headless Chromium and saved as a PNG.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumPath } from '../client/host/browser.ts';
import { paramLayout } from '../shared/models/layout.ts';
import { parseRunConfig } from '../shared/train/run-config.ts';
import { LEARNING_HEADING, writeSection } from './results-file.ts';

export const FAMILIES = ['gpt-char-small', 'lstm-char', 'gru-char', 'rnn-char'] as const;
const UNIGRAM = 3.06;

interface Row {
  step: number;
  loss?: number;
  val_loss?: number;
  tokens_per_s?: number;
  t: number;
}

export interface LearningSource {
  /** the machine in words */
  machine: string;
  /** preset → metrics file */
  files: Record<string, string>;
  /** a note on the conditions (e.g. a shared machine) */
  note?: string;
}

const read = (path: string): Row[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);

const fmtTime = (s: number) => (s >= 60 ? `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s` : `${s.toFixed(1)} s`);

function paramsOf(root: string, preset: string): number {
  const raw = JSON.parse(readFileSync(join(root, 'coordinator', 'presets', `${preset}.json`), 'utf8'));
  return paramLayout(parseRunConfig(raw, { vocabSize: () => 89 }).model).size;
}

function summary(rows: Row[]) {
  const val = rows.filter((r) => r.val_loss !== undefined);
  const train = rows.filter((r) => r.loss !== undefined);
  const first = (x: number) => val.find((r) => r.val_loss! < x);
  const rates = train.slice(5).map((r) => r.tokens_per_s ?? 0).sort((a, b) => a - b);
  return {
    val,
    train,
    last: val.at(-1),
    under22: first(2.2),
    under20: first(2.0),
    wall: rows.at(-1)?.t ?? 0,
    medianRate: rates.length ? rates[rates.length >> 1] : 0,
    steps: train.at(-1)?.step ?? 0,
  };
}

export function learningSection(root: string, sources: LearningSource[], png?: string): string {
  const ref = sources[0];
  const lines: string[] = [LEARNING_HEADING, ''];
  lines.push(
    'Each family preset, trained for 1,500 steps with B = 16 and T = 64 on Moby-Dick, at about 0.1 M parameters. Validation loss is in nats per character,',
    `the mean over 8 fixed validation batches. The unigram baseline is ${UNIGRAM}. Regenerate with \`npm run bench -- learning\`; see bench/README.md.`,
    '',
  );
  const steps = [0, 200, 400, 600, 800, 1000, 1200, 1400, 1500];
  lines.push(`| family | params | ${steps.map((s) => `step ${s}`).join(' | ')} |`, `| --- | --- | ${steps.map(() => '---').join(' | ')} |`);
  for (const f of FAMILIES) {
    if (!ref.files[f] || !existsSync(ref.files[f])) continue;
    const s = summary(read(ref.files[f]));
    const at = (k: number) => s.val.find((r) => r.step === k)?.val_loss?.toFixed(3) ?? '–';
    lines.push(`| ${f} | ${(paramsOf(root, f) / 1000).toFixed(1)} k | ${steps.map((k) => (k === 1500 ? `**${at(k)}**` : at(k))).join(' | ')} |`);
  }
  lines.push('', 'Wall time and throughput by machine. A dash means the machine has no run of that family.', '');
  lines.push('| machine | family | to val < 2.2 | to val < 2.0 | 1,500 steps | median tokens/s | final val |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const src of sources) {
    for (const f of FAMILIES) {
      const file = src.files[f];
      if (!file || !existsSync(file)) {
        lines.push(`| ${src.machine} | ${f} | – | – | – | – | – |`);
        continue;
      }
      const s = summary(read(file));
      const when = (r?: Row) => (r ? `step ${r.step}, ${fmtTime(r.t)}` : 'not reached');
      lines.push(`| ${src.machine} | ${f} | ${when(s.under22)} | ${when(s.under20)} | ${s.steps === 1500 ? fmtTime(s.wall) : `${s.steps} steps so far`} | ${Math.round(s.medianRate).toLocaleString('en')} | ${s.last?.val_loss?.toFixed(4) ?? '–'} |`);
    }
  }
  for (const src of sources) if (src.note) lines.push('', `${src.machine}: ${src.note}`);
  if (png) lines.push('', `![Validation and training loss against step for the four families](${png})`);
  return `${lines.join('\n')}\n`;
}

/** the plot: val loss (points joined) and train loss (faint, smoothed) per family against step, as a PNG */
export async function learningPlot(root: string, source: LearningSource, out: string): Promise<void> {
  const series = FAMILIES.filter((f) => source.files[f] && existsSync(source.files[f])).map((f) => {
    const rows = read(source.files[f]);
    const train = rows.filter((r) => r.loss !== undefined);
    // a 25-step moving average keeps the train curve readable
    const smooth = train.map((r, i) => {
      const w = train.slice(Math.max(0, i - 24), i + 1);
      return [r.step, w.reduce((a, x) => a + x.loss!, 0) / w.length];
    });
    return { name: f, val: rows.filter((r) => r.val_loss !== undefined).map((r) => [r.step, r.val_loss!]), train: smooth };
  });
  const uplotJs = readFileSync(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8');
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 560 }, deviceScaleFactor: 1 });
    await page.setContent(`<!doctype html><meta charset="utf-8"><style>${uplotCss} body{margin:0;font:14px system-ui,sans-serif;background:#fff} h1{font-size:16px;margin:10px 16px 0}</style><h1>Moby-Dick, char level, ~0.1 M parameters each: val loss (points) and train loss (lines, 25-step mean); ${source.machine}</h1><div id="c"></div><script>${uplotJs}</script>`);
    await page.evaluate((series) => {
      const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
      const steps = [...new Set(series.flatMap((s) => [...s.train, ...s.val].map((p) => p[0])))].sort((a, b) => a - b);
      const col = (pts: number[][]) => {
        const m = new Map(pts.map((p) => [p[0], p[1]]));
        return steps.map((s) => m.get(s) ?? null);
      };
      const data = [steps, ...series.flatMap((s) => [col(s.train), col(s.val)])];
      const U = (window as unknown as { uPlot: new (o: object, d: unknown, el: HTMLElement) => unknown }).uPlot;
      new U(
        {
          width: 1000,
          height: 520,
          scales: { x: { time: false }, y: { range: [1.5, 4.6] } },
          axes: [{ label: 'optimizer step' }, { label: 'loss (nats/char)' }],
          series: [
            {},
            ...series.flatMap((s, i) => [
              { label: `${s.name} train`, stroke: `${colors[i]}66`, width: 1, spanGaps: true, points: { show: false } },
              { label: `${s.name} val`, stroke: colors[i], width: 2, spanGaps: true, points: { show: true, size: 6, fill: colors[i] } },
            ]),
          ],
        },
        data,
        document.getElementById('c')!,
      );
    }, series);
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await browser.close();
  }
}

export async function runLearningReport(root: string, o: { out?: string; png?: string } = {}): Promise<void> {
  const gpuDir = join(root, 'bench', 'data', 'h200-learn');
  // a fresh local run's metrics, else the committed copy of the last ones (bench/data/swiftshader-learn)
  const local = (f: string) => {
    const fresh = join(root, 'runs', f, 'metrics.jsonl');
    return existsSync(fresh) ? fresh : join(root, 'bench', 'data', 'swiftshader-learn', `${f}.jsonl`);
  };
  const sources: LearningSource[] = [
    { machine: 'NVIDIA H200 (Dawn, Node)', files: Object.fromEntries(FAMILIES.map((f) => [f, join(gpuDir, `${f}.jsonl`)])) },
    {
      machine: '2-core AMD EPYC, SwiftShader (Dawn, Node)',
      files: Object.fromEntries(FAMILIES.map((f) => [f, local(f)])),
      note:
        'runs of `npx gradswarm train PRESET --runtime node`, read from runs/PRESET/metrics.jsonl (copies in bench/data/swiftshader-learn). The gpt and lstm runs of ' +
        'the previous session came before metrics.jsonl existed; bench/LEARNING.md has them: gpt-char-small reached 1.914 in 17 min 36 s ' +
        '(1,530 tokens/s; val 1.993 at step 1000), lstm-char 1.865 in 22 min 28 s (1,196 tokens/s; val 2.071 at step 400, about 6 min). ' +
        'The gru and rnn runs here shared the 2 cores with test suites and benchmarks of other work, so their wall times are longer than a quiet machine gives.',
    },
  ];
  const png = o.png ?? join(root, 'bench', 'learning.png');
  await learningPlot(root, sources[0], png);
  const section = learningSection(root, sources, 'learning.png');
  writeSection(o.out ?? join(root, 'bench', 'RESULTS.md'), LEARNING_HEADING, section);
  console.log(section);
  console.log(`plot: ${png}`);
  writeFileSync(join(root, 'bench', 'data', 'learning-section.md'), section);
}
