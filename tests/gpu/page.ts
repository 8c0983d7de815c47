// One headless Chromium page running client/harness.ts, shared by the tests of a file.
import { join } from 'node:path';
import { openOpHost, type OpHost } from '../../client/host/op-host.ts';
import type { CheckResult } from '../../client/runner.ts';
import { spec } from '../../client/runner.ts';
import { freshSeed } from '../../shared/rng.ts';

export async function openHarness(): Promise<OpHost> {
  return openOpHost('browser', join(import.meta.dirname, '..', '..'));
}

/** a fresh seed per case, printed on failure so it can be replayed with GRADSWARM_SEED */
export async function check(host: OpHost, op: string, caseName: string): Promise<CheckResult> {
  const seed = freshSeed();
  const r = await host.checkOp(op, caseName, seed);
  if (!r.ok) console.error(`${op} / ${caseName} failed with seed ${seed} (GRADSWARM_SEED=${seed} replays it):`, r.errors);
  return r;
}

/** every case name of an op, large ones included, for it.each */
export const casesOf = (op: string) => spec(op).cases.map((c) => c.name);
