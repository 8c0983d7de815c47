// `gradswarm bench reliability [--quick] [--out FILE] [--seed N]` (npm run bench -- reliability): the full versions of
// the reliability suites whose short versions are tests/reliability/*.test.ts, and the report docs/RELIABILITY.md.
//   1. Attacks (bench/reliability/attacks.ts, matrix.ts): every attack by 2 of 10 simulated volunteers against a
//      robust run config, K = 30 steps, against a clean run of the same seed; a control without defences; the
//      liveness attacks within a time budget; the rate limit probed on one connection.
//   2. Faults (faults.ts): volunteers dying before, mid- and after an upload, a network cut, slow volunteers.
//   3. Fuzz (fuzz-frames.ts, fuzz.ts): 20,000 frames against a coordinator alone in a child process
//      (coordinator-child.ts), health and process checked after every 1,000, memory after a full GC.
// The attack and fault runs use an in-process coordinator (as the tests do); --quick runs shorter versions of all three.
import { bundleForNode } from '../client/host/bundle.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { paramLayout } from '../shared/models/layout.ts';
import { freshSeed } from '../shared/rng.ts';
import { startCoordinator, tinyRun } from '../tests/swarm/helpers.ts';
import { ATTACKS, attackByName, LIVENESS } from './reliability/attacks.ts';
import type { ChildReply, ChildRequest } from './reliability/coordinator-child.ts';
import { FAULTS, runFault, type FaultResult } from './reliability/faults.ts';
import { runFuzz, type FuzzResult } from './reliability/fuzz.ts';
import { ROBUST, runMatrix, runScenario, type MatrixOptions, type ScenarioResult } from './reliability/matrix.ts';
import { probeRateLimitReset } from './reliability/probes.ts';
import { attackTable, faultTable, fuzzSummary, livenessTable, renderReport, type ReliabilityReport } from './reliability/report.ts';
import { SimWorker } from './reliability/sim.ts';

export interface ReliabilityOptions {
  quick?: boolean;
  /** the report (default docs/RELIABILITY.md; with `only`, none unless given) */
  out?: string;
  seed?: number;
  /** parts to run: attack and fault names, 'control', 'rate-limit', 'fuzz' (default: all) */
  only?: string[];
}

const PLAN = {
  full: { steps: 30, timeoutMs: 180_000, livenessBudgetMs: 60_000, faultSteps: 12, frames: 20_000, lanes: 16, batch: 1000 },
  quick: { steps: 10, timeoutMs: 60_000, livenessBudgetMs: 15_000, faultSteps: 8, frames: 3000, lanes: 8, batch: 500 },
};

function machine(): string {
  const c = cpus();
  return `${c[0]?.model.trim() ?? 'an unknown CPU'} (${c.length} cores), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${process.arch}, Node ${process.version}`;
}

/** the child entry, bundled (a child cannot load .ts) */
async function bundleChild(root: string): Promise<string> {
  const outdir = join(root, 'node_modules', '.cache', 'gradswarm', 'bench-reliability');
  return (await bundleForNode(root, { coordinator: join(root, 'bench', 'reliability', 'coordinator-child.ts') }, outdir)).coordinator;
}

/** the child's next message of a type (its exit rejects) */
function next<T extends ChildReply['type']>(child: ChildProcess, type: T, ms = 60_000): Promise<Extract<ChildReply, { type: T }>> {
  return new Promise((ok, fail) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', on);
      child.off('exit', exit);
    };
    const timer = setTimeout(() => {
      done();
      fail(new Error(`the fuzz coordinator sent no '${type}' within ${ms / 1000} s`));
    }, ms);
    const on = (m: ChildReply) => {
      if (m.type !== type) return;
      done();
      ok(m as Extract<ChildReply, { type: T }>);
    };
    const exit = (code: number | null, sig: string | null) => {
      done();
      fail(new Error(`the fuzz coordinator exited (${sig ?? code})`));
    };
    child.on('message', on);
    child.on('exit', exit);
  });
}

async function fuzzInChild(root: string, seed: number, plan: (typeof PLAN)['full'], log: (s: string) => void): Promise<FuzzResult> {
  const child = fork(await bundleChild(root), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `${sig ?? code}`));
  const ask = (m: ChildRequest) => child.send(m);
  let honest: SimWorker | undefined;
  try {
    const runId = 'fuzz';
    const ready = next(child, 'ready');
    ask({ type: 'start', config: tinyRun({ train: { max_steps: 1_000_000 }, swarm: { lease_timeout_s: 2 } }), runId });
    const { url, params } = await ready;
    honest = new SimWorker({ url, runId, name: 'honest', computeMs: 20 }).start();
    const stats = async () => {
      const r = next(child, 'stats', 30_000);
      ask({ type: 'stats' });
      return r;
    };
    const r = await runFuzz(
      {
        url,
        runId,
        params,
        memory: async () => stats(),
        alive: () => exited === undefined,
        steps: async () => (await stats()).steps,
        workerRows: async () => (await stats()).workerRows,
      },
      { frames: plan.frames, seed, lanes: plan.lanes, batch: plan.batch, log },
    );
    if (exited) log(`the fuzz coordinator exited (${exited})`);
    return r;
  } finally {
    await honest?.close();
    if (child.connected) child.disconnect();
    if (exited === undefined) child.kill('SIGTERM');
  }
}

export async function runReliabilityBench(root: string, o: ReliabilityOptions = {}): Promise<ReliabilityReport | undefined> {
  const seed = o.seed ?? freshSeed();
  const plan = PLAN[o.quick ? 'quick' : 'full'];
  const known = [...ATTACKS.map((a) => a.name), ...FAULTS.map((f) => f.name), 'control', 'rate-limit', 'fuzz'];
  const unknown = o.only?.filter((x) => !known.includes(x)) ?? [];
  if (unknown.length) throw new Error(`--only: no part named ${unknown.join(', ')} (parts: ${known.join(', ')})`);
  const want = (name: string) => !o.only?.length || o.only.includes(name);
  const out = o.out ?? (o.only?.length ? undefined : join(root, 'docs', 'RELIABILITY.md'));
  const t0 = performance.now();
  const log = (s: string) => console.log(s);
  log(`reliability: seed ${seed}, ${o.quick ? 'quick' : 'full'} (${machine()})`);
  const config = tinyRun();
  const coord = await startCoordinator();
  let matrix!: Awaited<ReturnType<typeof runMatrix>>;
  const liveness: ScenarioResult[] = [];
  const faults: FaultResult[] = [];
  let rateLimit!: Awaited<ReturnType<typeof probeRateLimitReset>>;
  try {
    const mo: MatrixOptions = { coord, config: (over) => tinyRun(over), steps: plan.steps, workers: 10, attackers: 2, seed, accum: 8, timeoutMs: plan.timeoutMs, log };
    matrix = await runMatrix(
      mo,
      ATTACKS.filter((a) => !LIVENESS.includes(a.name) && want(a.name)),
      want('control') ? attackByName('sign-flip') : undefined,
    );
    console.log(`\n${attackTable(matrix)}\n`);
    for (const name of LIVENESS.filter(want)) liveness.push(await runScenario({ ...mo, timeoutMs: plan.livenessBudgetMs }, name, attackByName(name), ROBUST));
    if (liveness.length) console.log(`\n${livenessTable(liveness, matrix.clean, plan.steps)}\n`);
    if (want('rate-limit')) {
      rateLimit = await probeRateLimitReset(coord.url);
      log(`rate limit: ${JSON.stringify(rateLimit)}`);
    }
    for (const f of FAULTS.filter((f) => want(f.name))) faults.push(await runFault({ coord, config: (over) => tinyRun(over), steps: plan.faultSteps, honest: 4, computeMs: 100, seed, timeoutMs: plan.timeoutMs, log }, f));
    if (faults.length) console.log(`\n${faultTable(faults, plan.faultSteps)}\n`);
  } finally {
    await coord.close();
  }
  const fuzz = want('fuzz') ? await fuzzInChild(root, seed, plan, log) : undefined;
  if (fuzz) console.log(`\n${fuzzSummary(fuzz)}\n`);
  if (!out) return undefined;
  if (!fuzz || !rateLimit || faults.length !== FAULTS.length || liveness.length !== LIVENESS.length || !matrix.control) throw new Error('the report needs every part: leave out --only (or give --out for a partial run)');
  const report: ReliabilityReport = {
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    seed,
    quick: !!o.quick,
    seconds: (performance.now() - t0) / 1000,
    setup: {
      params: paramLayout(config.model).size,
      vocab: config.model.vocab_size,
      steps: plan.steps,
      workers: 10,
      attackers: 2,
      accum: 8,
      batch: config.data.batch_size,
      block: config.data.block_size,
      faultSteps: plan.faultSteps,
      livenessBudgetS: plan.livenessBudgetMs / 1000,
      fuzzLanes: plan.lanes,
    },
    matrix,
    liveness,
    rateLimit,
    faults,
    fuzz,
  };
  writeFileSync(out, renderReport(report));
  log(`wrote ${out} (${(report.seconds / 60).toFixed(1)} min)`);
  return report;
}
