// bench/RESULTS.md holds the kernel report (bench/kernels.ts) and, after it, one section per other benchmark, each
// from its heading to the next: the training step (bench/train.ts), learning (bench/learning.ts), then the swarm
// (bench/swarm.ts). Each benchmark
// rewrites its own part and keeps the others'.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const TRAIN_HEADING = '## Training step: tokens/s and memory';
export const SWARM_HEADING = '## Swarm: coordinator ingest and overhead';
export const LEARNING_HEADING = '## Learning on Moby-Dick: the four families';
/** the sections after the kernel report, in file order */
const SECTIONS = [TRAIN_HEADING, LEARNING_HEADING, SWARM_HEADING];

/** the file's text split into the kernel report (up to the first section heading) and the sections present */
function split(path: string): { kernels: string; sections: Map<string, string> } {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const find = (h: string) => (text.startsWith(`${h}\n`) ? 0 : text.indexOf(`\n${h}\n`) + 1 || -1);
  const starts = SECTIONS.map((h) => [h, find(h)] as const)
    .filter(([, at]) => at >= 0)
    .sort((a, b) => a[1] - b[1]);
  const sections = new Map(starts.map(([h, at], i) => [h, text.slice(at, starts[i + 1]?.[1])]));
  return { kernels: starts.length ? text.slice(0, starts[0][1]) : text, sections };
}

function write(path: string, kernels: string, sections: Map<string, string>): void {
  const parts = [kernels, ...SECTIONS.map((h) => sections.get(h) ?? '')].map((p) => p.trimEnd()).filter(Boolean);
  writeFileSync(path, `${parts.join('\n\n')}\n`);
}

/** write the kernel report, keeping the sections that follow it */
export function writeKernelReport(path: string, report: string): void {
  write(path, report, split(path).sections);
}

/** write one section (starting with its heading), keeping the kernel report and the other sections */
export function writeSection(path: string, heading: string, section: string): void {
  if (!SECTIONS.includes(heading)) throw new Error(`unknown RESULTS.md section '${heading}'`);
  if (!section.startsWith(`${heading}\n`)) throw new Error(`the section must start with '${heading}'`);
  const { kernels, sections } = split(path);
  sections.set(heading, section);
  write(path, kernels, sections);
}

/** write the training section (starting with TRAIN_HEADING), keeping the rest */
export function writeTrainSection(path: string, section: string): void {
  writeSection(path, TRAIN_HEADING, section);
}
