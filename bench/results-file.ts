// bench/RESULTS.md holds the kernel report (bench/kernels.ts) and, last, the training-step section
// (bench/train.ts). Each benchmark rewrites its own part and keeps the other's.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const TRAIN_HEADING = '## Training step: tokens/s and memory';

/** the file's text split at the training section's heading (which runs to the end of the file) */
function split(path: string): { kernels: string; train: string } {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const at = text.indexOf(`\n${TRAIN_HEADING}\n`);
  return at < 0 ? { kernels: text, train: '' } : { kernels: text.slice(0, at + 1), train: text.slice(at + 1) };
}

const joined = (kernels: string, train: string) => (train ? `${kernels.trimEnd()}${kernels.trim() ? '\n\n' : ''}${train.trimEnd()}\n` : kernels);

/** write the kernel report, keeping the training section that follows it */
export function writeKernelReport(path: string, report: string): void {
  writeFileSync(path, joined(report, split(path).train));
}

/** write the training section (starting with TRAIN_HEADING), keeping the kernel report before it */
export function writeTrainSection(path: string, section: string): void {
  if (!section.startsWith(`${TRAIN_HEADING}\n`)) throw new Error(`the training section must start with '${TRAIN_HEADING}'`);
  writeFileSync(path, joined(split(path).kernels, section));
}
