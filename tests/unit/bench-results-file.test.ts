// bench/RESULTS.md is written by two benchmarks: each rewrites its own part and keeps the other's.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRAIN_HEADING, writeKernelReport, writeTrainSection } from '../../bench/results-file.ts';

describe('bench/RESULTS.md sections', () => {
  it('the training section goes last and survives a new kernel report; a new training section replaces the old', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gradswarm-results-')), 'RESULTS.md');
    const kernels1 = `# Kernel benchmark\n\nrun ${Math.random()}\n\n## Where we are not on par\n- nowhere\n`;
    writeFileSync(path, kernels1);
    const train1 = `${TRAIN_HEADING}\n\nfirst ${Math.random()}\n\n### Throughput\n| a |\n`;
    writeTrainSection(path, train1);
    expect(readFileSync(path, 'utf8')).toBe(`${kernels1}\n${train1}`);
    const kernels2 = `# Kernel benchmark\n\nrun ${Math.random()}\n`;
    writeKernelReport(path, kernels2);
    expect(readFileSync(path, 'utf8')).toBe(`${kernels2}\n${train1}`);
    const train2 = `${TRAIN_HEADING}\n\nsecond ${Math.random()}\n`;
    writeTrainSection(path, train2);
    expect(readFileSync(path, 'utf8')).toBe(`${kernels2}\n${train2}`);
    expect(() => writeTrainSection(path, '## Something else\n')).toThrow(/must start with/);
  });

  it('a fresh file gets the section alone, and a kernel report alone stays as written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradswarm-results-'));
    const a = join(dir, 'a.md');
    writeTrainSection(a, `${TRAIN_HEADING}\n\nx\n`);
    expect(readFileSync(a, 'utf8')).toBe(`${TRAIN_HEADING}\n\nx\n`);
    const b = join(dir, 'b.md');
    writeKernelReport(b, '# Kernel benchmark\n\ny\n');
    expect(readFileSync(b, 'utf8')).toBe('# Kernel benchmark\n\ny\n');
  });
});
