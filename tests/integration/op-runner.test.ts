// `npx gradswarm op NAME --in --out [--grad]` as a user runs it: for every op of the table, a safetensors file
// of inputs (by PyTorch names, options as JSON in __metadata__, grad_<output> for backward) goes in, and the
// outputs and grad_<input>s that come out match the float64 reference. Bad files get clear errors.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { randomLike, relError, resolveOptions, type Tensors } from '../../shared/ops.ts';
import { SPECS } from '../../shared/reference/index.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'coordinator', 'gradswarm.mjs');
const dir = mkdtempSync(join(tmpdir(), 'gradswarm-op-'));

async function gradswarm(...args: string[]) {
  try {
    const r = await run('node', [cli, ...args], { cwd: root, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('gradswarm op (browser runtime)', () => {
  it.each(SPECS.map((s) => [s.hasBackward ? `${s.name}: forward and --grad match` : `${s.name}: the update matches`, s.name]))('%s the reference', async (_title, name) => {
    const s = SPECS.find((x) => x.name === name)!;
    const seed = freshSeed();
    const rng = new Rng(seed);
    // the odd case when there is one (the tiny case of some ops is below a tile), else the first
    const c = s.cases.find((x) => x.name.startsWith('odd') && !x.large) ?? s.cases[0];
    const inputs = s.makeInputs(rng, c);
    const opts = resolveOptions(s, c.options);
    const want: Tensors = s.reference.forward(inputs, opts);
    const file: Tensors = { ...inputs };
    if (s.hasBackward) {
      const g: Tensors = {};
      for (const k of s.outputs) file[`grad_${k}`] = g[k] = randomLike(rng, want[k]);
      for (const [k, v] of Object.entries(s.reference.backward!(inputs, opts, g))) want[`grad_${k}`] = v;
    }
    const metadata = Object.fromEntries(Object.entries(c.options ?? {}).map(([k, v]) => [k, JSON.stringify(v)]));
    const inPath = join(dir, `${name}-in.safetensors`);
    const outPath = join(dir, `${name}-out.safetensors`);
    writeFileSync(inPath, writeSafetensors(file, metadata));
    const r = await gradswarm('op', name, '--in', inPath, '--out', outPath, ...(s.hasBackward ? ['--grad'] : []));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${name}.* on .*: wrote`));
    const got = readSafetensors(new Uint8Array(readFileSync(outPath))).tensors;
    for (const [k, w] of Object.entries(want)) {
      if (!s.outputs.includes(k) && !k.startsWith('grad_')) continue;
      expect(got[k], `output ${k}`).toBeDefined();
      expect(got[k].shape).toEqual(w.shape);
      const tol = k.startsWith('grad_') ? s.tolerance.backward : s.tolerance.forward;
      expect(relError(got[k].data, w.data), `${k} (seed ${seed}, case ${c.name})`).toBeLessThanOrEqual(tol);
    }
  });

  it('explains a missing input, an unknown op, a bad option and a file that is not safetensors', async () => {
    const inPath = join(dir, 'partial.safetensors');
    writeFileSync(inPath, writeSafetensors({ input: { shape: [3], data: new Float32Array(3) } }));
    const out = join(dir, 'never.safetensors');
    const missing = await gradswarm('op', 'add', '--in', inPath, '--out', out);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/add: missing input 'other'/);
    const unknown = await gradswarm('op', 'convolution', '--in', inPath, '--out', out);
    expect(unknown.stderr).toMatch(/unknown op 'convolution' \(known: .*gelu/);
    const typo = join(dir, 'typo.safetensors');
    writeFileSync(typo, writeSafetensors({ x: { shape: [3], data: new Float32Array(3) } }, { is_casual: 'true' }));
    const badOption = await gradswarm('op', 'gelu', '--in', typo, '--out', out);
    expect(badOption.stderr).toMatch(/unknown option 'is_casual' in __metadata__ \(this op takes none\)/);
    const junk = join(dir, 'junk.safetensors');
    writeFileSync(junk, 'hello');
    const notFile = await gradswarm('op', 'gelu', '--in', junk, '--out', out);
    expect(notFile.stderr).toMatch(/not a safetensors file/);
    const noGrad = await gradswarm('op', 'gelu', '--in', join(dir, 'gelu-in.safetensors'), '--out', out, '--grad');
    // gelu-in.safetensors has grad_out, so this runs; a file without it is refused:
    expect(noGrad.code).toBe(0);
    const x = join(dir, 'x-only.safetensors');
    writeFileSync(x, writeSafetensors({ x: { shape: [3], data: new Float32Array(3) } }));
    const needsGrad = await gradswarm('op', 'gelu', '--in', x, '--out', out, '--grad');
    expect(needsGrad.stderr).toMatch(/needs grad_<output> for at least one of 'grad_out'/);
  });
});
