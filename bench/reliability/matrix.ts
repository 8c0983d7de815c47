// The attack matrix: for each attack, one run on a live coordinator trained for K steps by `workers` simulated
// volunteers of which `attackers` attack (the rest compute honest gradients with the reference model), against a
// clean run of the same seed, config and K with every worker honest. A banned attacker comes back at once as a new
// identity (it drops its identity token; honest workers keep theirs across reconnects) and keeps attacking. Measured per attack: the refusal codes the
// attackers got, the identities banned, their answers accepted, strikes and failed spot checks, the validation
// loss of the final weights against the clean run's, the health route polled throughout, a fresh honest client
// joining mid-run, and the exact-accounting record.
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import type { SwarmRun } from '../../coordinator/swarm/run.ts';
import type { RunConfig, SwarmConfig } from '../../shared/train/run-config.ts';
import type { Attack } from './attacks.ts';
import { accountingProblem, freshClientJoins, pollHealth, tallyInto, until, valLoss, type Health } from './checks.ts';
import { SimWorker } from './sim.ts';

/** the defences under test: CenteredClip, the norm screen at 10× the median, half the batches spot-checked, a ban at 3 strikes */
export const ROBUST: Partial<SwarmConfig> = { aggregator: 'centered_clip', norm_screen: 10, spot_check_fraction: 0.5, ban_after: 3 };
/** no defences: the plain mean, no screen, no spot checks (the control that shows an attack would bite) */
export const UNDEFENDED: Partial<SwarmConfig> = { aggregator: 'mean', norm_screen: 0, spot_check_fraction: 0 };

export type ConfigOverrides = { train?: object; swarm?: object; optim?: object; model?: object; data?: object };

export interface MatrixOptions {
  coord: Coordinator;
  /** a fresh run config (the tiny gpt) with these overrides */
  config: (over: ConfigOverrides) => RunConfig;
  /** optimizer steps per run (K) */
  steps: number;
  workers: number;
  attackers: number;
  /** the runs' train.seed (same for the clean run and every attack) */
  seed: number;
  /** batches per step (target_batch_size / batch_size) */
  accum: number;
  /** give up on a run after this long */
  timeoutMs: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  tried: string;
  honest: number;
  attackers: number;
  /** steps done (K unless it stalled) and seconds taken */
  steps: number;
  seconds: number;
  finished: boolean;
  valLoss: number;
  /** the same at initialisation */
  valLossInit: number;
  /** refusals the attackers were given (acks and 'refused' events) and http statuses they got, by code */
  codes: Record<string, number>;
  /** how the attackers' connections closed, by reason */
  disconnects: Record<string, number>;
  /** attacker identities (one per session) and how many of them the run banned */
  identities: number;
  banned: number;
  /** the attackers' train answers the run acknowledged (a spot-checked answer is acknowledged, then judged) */
  accepted: number;
  /** the attackers' train answers the run applied (SwarmRun's credit: alone, or agreeing in a spot check) */
  applied: number;
  strikes: number;
  checksFailed: number;
  tallies: Record<string, number>;
  honestCodes: Record<string, number>;
  /** strikes the run gave honest workers (must stay 0: an honest straggler or spike is never struck) */
  honestStrikes: number;
  spotChecks: { passed: number; failed: number; skipped: number; confirmed: number };
  /** outliers the run took clipped to the screen's cap (a batch three workers found huge: an honest spike) */
  outliersClipped: number;
  /** undefined when every batch was applied exactly once, in its step */
  accounting?: string;
  health: Health;
  /** a fresh honest client joined mid-run and got the weights */
  freshJoin: boolean;
  /** run status changes other than 'done' (an admin attack that worked) */
  statusChanges: string[];
  notes: string[];
}

let runSeq = 0;

/** one run: `attack` by o.attackers of o.workers (or all honest without one), with the swarm config given */
export async function runScenario(o: MatrixOptions, name: string, attack: Attack | undefined, swarm: Partial<SwarmConfig>): Promise<ScenarioResult> {
  const { coord } = o;
  const url = coord.url;
  const runId = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${++runSeq}`;
  const config = o.config({ train: { max_steps: o.steps, seed: o.seed, eval_interval: 0 }, swarm: { target_batch_size: o.accum * o.config({}).data.batch_size, lease_timeout_s: 10, ...swarm } });
  const run: SwarmRun = await coord.addRun(config, { id: runId });
  const valLossInit = valLoss(run);
  const statusChanges: string[] = [];
  run.on('status', (s, why) => s !== 'done' && statusChanges.push(`${s} (${why})`));
  const nAttack = attack ? o.attackers : 0;
  const honest: SimWorker[] = [];
  const attackers: SimWorker[] = [];
  let stopping = false;
  const spawnAttacker = (i: number) => {
    const w = new SimWorker({ url, runId, name: `attacker-${i}`, onLease: attack!.onLease, onSession: attack!.onSession }).start();
    attackers.push(w);
    void w.finished().then(() => {
      if (w.banned && !stopping && run.status === 'running') setTimeout(() => !stopping && spawnAttacker(i), 20);
    });
  };
  const t0 = performance.now();
  const poll = pollHealth(url);
  // attackers among the first to ask: they meet the run while its norm screen is still warming up
  for (let i = 0; i < o.workers; i++) {
    if (i % Math.ceil(o.workers / Math.max(1, nAttack)) === 0 && attackers.length < nAttack) spawnAttacker(attackers.length);
    else honest.push(new SimWorker({ url, runId, name: `honest-${i}` }).start());
  }
  const half = Math.max(1, Math.floor(o.steps / 2));
  const fresh = until(() => run.version >= half || run.status !== 'running', o.timeoutMs).then(() => freshClientJoins(url, runId, run.layout.size));
  const finished = await until(() => run.status === 'done', o.timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  stopping = true;
  const freshJoin = await fresh;
  await Promise.all([...honest, ...attackers].map((w) => w.close()));
  const health = await poll.stop();
  const changes = [...statusChanges];
  if (!finished) run.setStatus('stopped', 'the reliability suite gave up on it');

  const r: ScenarioResult = {
    name,
    tried: attack?.tried ?? 'no attack: every worker honest',
    honest: honest.length,
    attackers: nAttack,
    steps: run.version,
    seconds,
    finished,
    valLoss: valLoss(run),
    valLossInit,
    codes: {},
    disconnects: {},
    identities: 0,
    banned: 0,
    accepted: 0,
    applied: 0,
    strikes: 0,
    checksFailed: 0,
    tallies: {},
    honestCodes: {},
    honestStrikes: 0,
    spotChecks: { ...run.spotChecks },
    outliersClipped: run.outliersClipped,
    accounting: accountingProblem(run),
    health,
    freshJoin,
    statusChanges: changes,
    notes: [],
  };
  for (const w of attackers) {
    tallyInto(r.codes, w.codes);
    for (const d of w.disconnects) r.disconnects[d] = (r.disconnects[d] ?? 0) + 1;
    tallyInto(r.tallies, w.tallies);
    r.accepted += w.accepted;
    for (const n of w.notes) if (!r.notes.includes(n)) r.notes.push(n);
    for (const id of new Set(w.workerIds)) {
      const s = run.workers.get(id);
      r.identities++;
      if (!s) continue;
      r.applied += s.leases;
      r.strikes += s.strikes;
      r.checksFailed += s.checksFailed;
      if (s.banned) r.banned++;
    }
  }
  for (const w of honest) {
    tallyInto(r.honestCodes, w.codes);
    for (const id of new Set(w.workerIds)) r.honestStrikes += run.workers.get(id)?.strikes ?? 0;
  }
  o.log?.(`${name}: ${r.steps} steps in ${seconds.toFixed(1)} s, val loss ${r.valLoss.toFixed(4)}, refused ${JSON.stringify(r.codes)}, banned ${r.banned}/${r.identities}`);
  return r;
}

export interface MatrixResult {
  clean: ScenarioResult;
  attacks: (ScenarioResult & { relToClean: number })[];
  /** sign flip against no defences, and its own clean run (mean aggregator) */
  control?: { clean: ScenarioResult; attacked: ScenarioResult & { relToClean: number } };
}

const rel = (x: number, ref: number) => (x - ref) / ref;

/** the clean run, every attack against ROBUST, and (control) the sign flip against UNDEFENDED */
export async function runMatrix(o: MatrixOptions, attacks: Attack[], control?: Attack): Promise<MatrixResult> {
  const clean = await runScenario(o, 'clean', undefined, ROBUST);
  const out: MatrixResult = { clean, attacks: [] };
  for (const a of attacks) {
    const r = await runScenario(o, a.name, a, ROBUST);
    out.attacks.push({ ...r, relToClean: rel(r.valLoss, clean.valLoss) });
  }
  if (control) {
    const c = await runScenario(o, 'clean, undefended', undefined, UNDEFENDED);
    const r = await runScenario(o, `${control.name}, undefended`, control, UNDEFENDED);
    out.control = { clean: c, attacked: { ...r, relToClean: rel(r.valLoss, c.valLoss) } };
  }
  return out;
}
