// `gradswarm check`: every op case, forward and backward, GPU against the float64 CPU reference.
import { openOpHost, type RuntimeName } from '../../client/host/op-host.ts';
import { SPECS } from '../../shared/reference/index.ts';
import { freshSeed } from '../../shared/rng.ts';
import { ROOT } from './root.ts';

export async function checkCommand(o: { op?: string; quick?: boolean; seed?: number; runtime: RuntimeName }): Promise<void> {
  const wanted = o.op ? o.op.split(',').map((s) => s.trim()) : SPECS.map((s) => s.name);
  for (const w of wanted) if (!SPECS.some((s) => s.name === w)) throw new Error(`unknown op '${w}' (known: ${SPECS.map((s) => s.name).join(', ')})`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0)) throw new Error(`--seed takes a whole number >= 0, got '${o.seed}'`);
  const seed = o.seed ?? freshSeed();
  if (!Number.isInteger(seed)) throw new Error(`GRADSWARM_SEED must be a whole number, got '${process.env.GRADSWARM_SEED}'`);
  const host = await openOpHost(o.runtime, ROOT, (l) => process.env.GRADSWARM_DEBUG && console.error(l));
  let failed = 0;
  try {
    const info = await host.info();
    console.log(`gradswarm kernel check on ${info.adapter}${info.fallback ? ' (software fallback adapter)' : ''}, runtime ${o.runtime}, seed ${seed}`);
    console.log('op'.padEnd(15) + 'case'.padEnd(26) + 'worst rel. error (tolerance)'.padEnd(40) + 'ms');
    for (const s of SPECS.filter((x) => wanted.includes(x.name))) {
      for (const c of s.cases) {
        if (o.quick && c.large) continue;
        const r = await host.checkOp(s.name, c.name, seed);
        const worst = Object.entries(r.errors).sort((a, b) => b[1] - a[1])[0];
        const line = worst ? `${worst[1].toExponential(1)} ${worst[0]} (${worst[0].startsWith('grad_') ? r.tolerance.backward : r.tolerance.forward})` : '-';
        if (!r.ok) failed++;
        console.log(`${s.name.padEnd(15)}${c.name.padEnd(26)}${line.padEnd(40)}${r.gpuMs.toFixed(0).padStart(6)}  ${r.ok ? 'ok' : 'FAIL'}`);
        if (!r.ok) for (const [k, e] of Object.entries(r.errors)) console.log(`${''.padEnd(41)}${k}: ${e.toExponential(2)}`);
      }
    }
  } finally {
    await host.close();
  }
  if (failed) {
    console.error(`${failed} case(s) failed; rerun with --seed ${seed} to reproduce`);
    process.exitCode = 1;
  } else console.log('all kernels match their references');
}
