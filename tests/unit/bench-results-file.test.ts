// bench/RESULTS.md is written by three benchmarks: each rewrites its own part and keeps the others'.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SWARM_HEADING, TRAIN_HEADING, writeKernelReport, writeSection, writeTrainSection } from '../../bench/results-file.ts';

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

  it('the swarm section follows the training section whoever writes first, and every rewrite keeps the other two', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gradswarm-results-')), 'RESULTS.md');
    const kernels = '# Kernel benchmark\n\nk\n\n## Where we are not on par\n- nowhere\n';
    const swarm = (x: string) => `${SWARM_HEADING}\n\n${x}\n\n### Targets\n- met\n`;
    const train = (x: string) => `${TRAIN_HEADING}\n\n${x}\n`;
    writeFileSync(path, kernels);
    writeSection(path, SWARM_HEADING, swarm('s1'));
    writeTrainSection(path, train('t1'));
    expect(readFileSync(path, 'utf8')).toBe(`${kernels}\n${train('t1')}\n${swarm('s1')}`);
    writeKernelReport(path, '# Kernel benchmark\n\nk2\n');
    writeSection(path, SWARM_HEADING, swarm('s2'));
    expect(readFileSync(path, 'utf8')).toBe(`# Kernel benchmark\n\nk2\n\n${train('t1')}\n${swarm('s2')}`);
    expect(() => writeSection(path, '## Something else', '## Something else\n')).toThrow(/unknown/);
  });
});
