// One swarm training run on the coordinator: the weights, the optimizer, the leases and the step accounting.
// Synchronous data parallelism in the manner of hivemind's target batch:
//
//   step s (0-based) trains on train batches s·A .. s·A + A − 1, A = target_batch_size / batch_size, each batch
//   dataset.batch('train', seed, i, B, T): exactly the batches a single worker with grad_accum_steps = A takes.
//   They are handed out as leases (batches_per_lease each) on weights version s; the gradients that come back
//   (each the sum over its lease's batches of every batch's mean-loss gradient) are added into one sum as they
//   arrive (memory O(model), not O(workers × model)). When all A batches are in, the step closes: clipGrads(sum,
//   grad_clip, A), AdamW at learningRate(s) on the CPU, version = s + 1, and the new weights are published (served at
//   GET weights/…, announced by a 'version' notice).
//
// Every batch of a step is applied once: a lease id is counted once; a lease that times out or whose worker
// leaves goes back to the queue (and a late answer to it is refused as expired); a refused submission (bad shape,
// NaN) puts its batches back. With step_timeout_s a step may close early with ≥ min_batch_size rows: the batches
// still out then are skipped, and their answers count in the next step if within max_staleness versions.
// Every eval_interval steps (and at 0 and the end) the fixed validation batches go out as eval leases on the
// current weights; the next step closes only after they are in, so they see exactly those weights.
//
// Against faulty and hostile volunteers (docs/RELIABILITY.md): every gradient is checked for shape and finite values
// and screened against the median of recent norms (./robust.ts); an outlier's batch waits for other opinions; a
// share of batches, and every lease of an identity on probation, is spot-checked by other workers (./spot-check.ts);
// a lease that is late for its holder gets a backup copy; strikes lead to a ban. A worker's record (strikes, checks,
// probation, a ban) is kept under its identity (./identity.ts) and saved with the run (exportState).
import { EventEmitter } from 'node:events';
import type { CharTokenizer } from '../../shared/data/tokenizer.ts';
import type { TokenDataset } from '../../shared/data/dataset.ts';
import type { OptimizerState } from '../../shared/models/checkpoint.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout, type ParamLayout } from '../../shared/models/layout.ts';
import { refuse, type Lease, type LeaseReply, type Refusal, type Progress, type RunStatus, type SubmitReply, type Submission } from '../../shared/protocol.ts';
import { CpuAdamW } from '../../shared/train/adamw-cpu.ts';
import { clipByNorm } from '../../shared/train/clip.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { learningRate } from '../../shared/train/schedule.ts';
import { optimizerSettings } from '../../client/train/trainer.ts';
import { Rng } from '../../shared/rng.ts';
import { GradSum } from './gradsum.ts';
import { centeredClip, coordinateMedian, median, NormScreen, relDistance, trimmedMean, type NormHistory } from './robust.ts';
import { judge, newCheck, type CheckResult, type JudgeOptions, type SpotCheck } from './spot-check.ts';

export interface WorkerInfo {
  /** the volunteer's identity (./identity.ts): the same across its reconnects and the coordinator's restarts */
  workerId: string;
  kind: string;
  name?: string;
  adapter?: string;
  /** the network it connects from (server.ts networkOf), for probation after a ban from there */
  address?: string;
}

/** what the run knows of one worker (the console's volunteers table) */
export interface WorkerStats extends WorkerInfo {
  joinedAt: number;
  lastSeen: number;
  /** train rows whose gradients were applied */
  samples: number;
  /** train leases applied */
  leases: number;
  evalLeases: number;
  /** submissions refused, by code */
  refused: Record<string, number>;
  computeMs: number;
  connected: boolean;
  /** strikes: non-finite or wrong-shape gradients, outliers that another worker's result for the batch showed up, failed spot checks */
  strikes: number;
  /** spot checks this worker's results passed / failed */
  checksPassed: number;
  checksFailed: number;
  /** why the worker was banned from this run (at ban_after strikes), if it was */
  banned?: string;
  /** leases of this worker that another worker's copy answered first (it straggled, or hoarded) */
  beaten?: number;
  /**
   * spot checks it must pass before it is trusted (swarm.probation for an identity new to the run, more from a
   * network that produced a banned identity): until then every train lease it gets is checked
   */
  probation?: number;
}

/** what a run keeps beside its checkpoints (server.ts writes it to the run's folder), so a restart loses neither */
export interface RunState {
  /** the weights version it was taken at */
  step: number;
  /** every volunteer's record, by identity: strikes, checks, bans, probation */
  workers: WorkerStats[];
  /** networks that produced a banned identity, and how many */
  bannedNetworks: Record<string, number>;
  /** the norm screen's history (a restart does not open a new warm-up) */
  norms: NormHistory;
}

/** a batch whose gradient came back as an outlier: who sent the outliers, in order */
interface OutlierRecord {
  senders: string[];
}

interface LeaseRecord extends Lease {
  workerId: string;
  issuedAt: number;
  /** the step the batches belong to (train) */
  step: number;
  /** backup leases: the lease ids computing the same batches (the first answer counts, the others are duplicates) */
  group?: Set<string>;
}

export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** rows applied in this step */
  samples: number;
  /** ms from the step's opening to its close; aggregate = the optimizer's share; compute = the mean ms a worker
   * reported computing one of the step's train leases (the rest of ms is waiting: network, queueing, stragglers) */
  ms: number;
  aggregateMs: number;
  computeMs: number;
  /** seconds since the run started */
  t: number;
  tokensPerSec: number;
}

export interface RunSnapshotOptions {
  /** the optimizer state and step to resume from */
  resume?: { params: Float32Array; optimizer: OptimizerState };
  /** persist a checkpoint (weights, optimizer state): called with copies after every checkpoint_interval and at the end */
  saveCheckpoint?: (step: number, params: Float32Array, state: OptimizerState) => Promise<string>;
  now?: () => number;
  /**
   * whether anyone still reads a published params array (the coordinator: downloads in flight). Given, a step writes
   * in place when nobody reads the current array, else into the array of the version before last once nobody reads
   * that, else into a new one; without it, every step makes a new array
   */
  inUse?: (params: Float32Array) => boolean;
  /**
   * whether a worker's answer is on its way (a large frame arriving, or waiting at the coordinator's ingest gate):
   * its lease is not late then, and a backup copy would only queue another upload behind it
   */
  answering?: (workerId: string) => boolean;
}

/** index of the first NaN or ±Inf in g, or -1 (only to name the element once the sum of squares found one) */
function firstNonFinite(g: Float32Array): number {
  for (let k = 0; k < g.length; k++) if (!Number.isFinite(g[k])) return k;
  return -1;
}

/** how many recent lease ids are remembered to tell a duplicate or an expired answer from an unknown one */
const REMEMBER_LEASES = 100_000;
/** a lease out for this many times its holder's usual turnaround gets a backup copy (SwarmRun.backupAfter) */
const BACKUP_FACTOR = 3;
/** ms: no backup sooner (timer jitter, an answer in flight) */
const BACKUP_MIN_MS = 50;
/** leases in a row beaten by a backup, none answered, per strike (a hoarder's signature; a straggler answers late) */
const STRIKE_STREAK = 2;
/** ms since a worker's last message for it to count as active (an idle worker is told to wait at most ~2 s) */
const ACTIVE_MS = 3000;
/** usual turnarounds a worker of lesser standing waits for a lease before it is served like anyone (./deferFor) */
const STARVE_TURNAROUNDS = 10;

export class SwarmRun extends EventEmitter<{
  weights: [version: number, params: Float32Array];
  progress: [Progress];
  step: [StepRecord];
  eval: [{ step: number; valLoss: number }];
  status: [RunStatus, string];
  checkpoint: [string, number];
  error: [Error];
  ban: [workerId: string, why: string];
  'spot-check': [{ batch: number; failed: string }];
}> {
  readonly layout: ParamLayout;
  /**
   * the weights of the current version. Not written while anyone may read it: a step writes into another array (the
   * coordinator serves this one to downloads without a copy)
   */
  params: Float32Array;
  /** the previous version's array while someone may still read it, for a later step to write into once nobody does */
  private previous?: Float32Array;
  readonly opt: CpuAdamW;
  /** batches per step */
  readonly accum: number;
  status: RunStatus = 'running';
  /** optimizer steps done = the weights version */
  version = 0;
  readonly workers = new Map<string, WorkerStats>();
  readonly history: StepRecord[] = [];
  readonly valHistory: { step: number; valLoss: number; t: number }[] = [];
  /** every applied train batch index → the step it was applied in (the exact-accounting record) */
  readonly applied = new Map<number, number>();
  lastCheckpoint?: string;
  readonly startedAt: number;

  private pending: number[] = [];
  private evalPending: number[] = [];
  private evalLosses: (number | undefined)[] = [];
  private evalVersion = -1;
  private readonly leases = new Map<string, LeaseRecord>();
  private readonly finished = new Map<string, 'done' | 'expired'>();
  /** the open step's sum of gradients, with the SIMD passes over each one that arrives */
  private readonly gradSum: GradSum;
  private readonly sum: Float32Array;
  private stepBatches = 0;
  private stepLossSum = 0;
  private stepComputeMs = 0;
  private stepLeases = 0;
  /** robust aggregators: each applied lease's per-batch mean gradient */
  private parts: Float32Array[] = [];
  private momentumBuf?: Float32Array;
  private readonly screen: NormScreen;
  /** batch → the workers whose gradients for it were refused as outliers (this step) */
  private outliers = new Map<number, OutlierRecord>();
  /** outliers taken clipped after further opinions agreed the batch's gradient is large */
  outliersClipped = 0;
  /** backup leases handed out for stragglers */
  backups = 0;
  private durations: number[] = [];
  private typicalMs = 0;
  /** each worker's recent lease turnarounds (issue to answer, ms): a lease is late against its holder's own pace */
  private readonly paces = new Map<string, number[]>();
  /** worker → its leases in a row that another copy answered first (the last on weights `version`), no answer since */
  private readonly beatenStreak = new Map<string, { n: number; version: number }>();
  /** a beaten lease → its holder and issue time (a late answer to it still shows the holder is working) */
  private readonly beatenLeases = new Map<string, { workerId: string; issuedAt: number }>();
  /** when batches last went into a queue (the step's opening, a requeue): the window for ranking who takes them */
  private queuedAt = 0;
  /** worker → when it was first told to wait for workers of better standing since its last lease */
  private readonly waitingSince = new Map<string, number>();
  private checks = new Map<number, SpotCheck>();
  /** spot-check outcomes: passed, failed (a tie broken by a third result), skipped (no second worker around) */
  readonly spotChecks = { passed: 0, failed: 0, skipped: 0, confirmed: 0 };
  /** networks with a worker struck for leases beaten unanswered before it answered anything (newcomers: no slack) */
  private readonly hoardingNetworks = new Set<string>();
  /** networks that produced a banned identity (their new identities get the longer probation) */
  private readonly bannedNetworks = new Map<string, number>();
  /** draws which passed spot checks are confirmed (seeded: a run replays) */
  private readonly rng: Rng;
  private stepStart = 0;
  private leaseSeq = 0;
  private timer?: ReturnType<typeof setInterval>;
  private readonly now: () => number;
  private saving: Promise<unknown> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly name: string,
    readonly config: RunConfig,
    readonly tokenizer: CharTokenizer,
    readonly dataset: TokenDataset,
    private readonly opts: RunSnapshotOptions = {},
  ) {
    super();
    this.now = opts.now ?? (() => performance.now());
    this.startedAt = this.now();
    const { model, data, swarm, optim } = config;
    if (tokenizer.size > model.vocab_size) throw new Error(`run ${id}: the corpus has ${tokenizer.size} symbols but model.vocab_size is ${model.vocab_size}`);
    dataset.windows('train', data.block_size);
    this.layout = paramLayout(model);
    this.accum = swarm.target_batch_size / data.batch_size;
    this.opt = new CpuAdamW(this.layout, optim);
    this.gradSum = new GradSum(this.layout.size);
    this.sum = this.gradSum.sum;
    this.screen = new NormScreen(swarm.norm_screen);
    this.rng = new Rng((config.train.seed ^ 0x5bd1e995) >>> 0);
    if (opts.resume) {
      this.params = Float32Array.from(opts.resume.params);
      this.opt.load(opts.resume.optimizer);
      this.version = opts.resume.optimizer.step;
    } else {
      this.params = initParams(model, config.train.seed);
    }
    if (this.version >= config.train.max_steps) {
      this.status = 'done';
      return;
    }
    if (config.train.eval_interval > 0 && this.version === 0) this.queueEval();
    this.openStep();
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref?.();
  }

  get maxSteps(): number {
    return this.config.train.max_steps;
  }

  /** the lease ids out now (tests, console) */
  get outstanding(): number {
    return this.leases.size;
  }

  /** leases a worker holds now */
  leasesOf(workerId: string): number {
    let n = 0;
    for (const l of this.leases.values()) if (l.workerId === workerId) n++;
    return n;
  }

  join(w: WorkerInfo): void {
    const t = Date.now();
    const s = this.workers.get(w.workerId);
    if (s) Object.assign(s, w, { lastSeen: t, connected: true });
    else {
      // an identity new to the run starts on probation, longer from a network that produced a banned identity
      const sw = this.config.swarm;
      const probation = w.address !== undefined && this.bannedNetworks.has(w.address) ? sw.probation_after_ban : sw.probation;
      this.workers.set(w.workerId, { ...w, joinedAt: t, lastSeen: t, samples: 0, leases: 0, evalLeases: 0, refused: {}, computeMs: 0, connected: true, strikes: 0, checksPassed: 0, checksFailed: 0, probation });
    }
  }

  /** the worker left (socket closed): its leases go back to the queue at once */
  leave(workerId: string): void {
    const s = this.workers.get(workerId);
    if (s) s.connected = false;
    for (const [id, l] of this.leases) if (l.workerId === workerId) this.expire(id, l);
    // a worker that leaves having given nothing and done nothing wrong is forgotten (the table would grow for ever
    // with every connection); contributors, struck and banned workers stay for the console
    if (s && !s.samples && !s.evalLeases && !s.strikes && !s.checksPassed && !s.banned && !this.beatenStreak.has(workerId)) {
      this.workers.delete(workerId);
      this.paces.delete(workerId);
      this.waitingSince.delete(workerId);
    }
  }

  /**
   * a worker's answer to its lease was refused before it reached the run (e.g. a schema error in its submit): the
   * lease goes back at once instead of at its timeout, and the sender gets a strike
   */
  rejectAnswer(workerId: string, leaseId: string, why: string): boolean {
    const l = this.leases.get(leaseId);
    if (!l || l.workerId !== workerId) return false;
    this.expire(leaseId, l);
    this.strike(workerId, why);
    return true;
  }

  get connectedWorkers(): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.connected) n++;
    return n;
  }

  setStatus(status: RunStatus, why: string): void {
    if (this.status === status || this.status === 'done' || this.status === 'stopped') return;
    this.status = status;
    if (status === 'stopped') this.dispose();
    if (status === 'paused') for (const [id, l] of this.leases) this.expire(id, l); // answers to them are refused as expired
    this.emit('status', status, why);
    this.emit('progress', this.progress());
  }

  /** a lease for the worker, or how long to wait; `holds`: the weights version it has (its lease request says) */
  lease(workerId: string, holds?: number): LeaseReply {
    const w = this.workers.get(workerId);
    if (w) w.lastSeen = Date.now();
    // a worker whose lease was beaten while it fetched newer weights (its loop then skips that lease, the run having
    // moved past it) was alive: not a hoarder's streak
    const streak = this.beatenStreak.get(workerId);
    if (streak && holds !== undefined && holds > streak.version) this.beatenStreak.delete(workerId);
    if (w?.banned) return refuse('banned', `banned from run ${this.id}: ${w.banned}`);
    if (this.status !== 'running') return this.status === 'paused' ? { ok: true, wait: 2000, why: 'the run is paused' } : refuse('run-not-running', `run ${this.id} is ${this.status}`);
    // one lease at a time per worker (the worker loop never asks for more): hoarding leases to stall a step takes
    // as many connections as leases, each of which the rate limit and the lease timeout bound
    const held = this.leasesOf(workerId);
    if (held > 0) return { ok: true, wait: 500, why: `answer the lease you hold first (${held} out)` };
    const { data, train, swarm } = this.config;
    const take = (q: number[]) => (q === this.pending ? this.takeTrain(workerId) : q.splice(0, swarm.batches_per_lease));
    let kind: Lease['kind'];
    let batches: number[] = [];
    let backup: LeaseRecord | undefined;
    const queued = this.evalPending.length > 0 || this.pending.length > 0;
    const defer = queued ? this.deferFor(workerId) : 0;
    if (defer > 0) {
      return { ok: true, wait: defer, why: `step ${this.version + 1}: volunteers with a record take the queued batches first` };
    } else if (this.evalPending.length) {
      kind = 'eval';
      batches = take(this.evalPending);
    } else if (this.pending.length && (batches = take(this.pending)).length) {
      kind = 'train';
    } else if ((backup = this.backupFor(workerId))) {
      kind = backup.kind;
      batches = [...backup.batches];
    } else {
      // ask again when the oldest lease out becomes eligible for a backup (or the new weights come)
      let wait = 100 + Math.min(2000, this.leases.size * 50);
      const t = this.now();
      for (const l of this.leases.values()) if (l.workerId !== workerId && this.current(l)) wait = Math.min(wait, Math.max(20, this.backupAfter(l) - (t - l.issuedAt)));
      return { ok: true, wait: Math.round(wait), why: `step ${this.version + 1}: waiting for ${this.leases.size} lease(s) out with other workers` };
    }
    const leaseId = `${this.id}.${this.version}.${++this.leaseSeq}`;
    const lease: LeaseRecord = {
      leaseId,
      runId: this.id,
      version: this.version,
      kind,
      batches,
      B: data.batch_size,
      T: data.block_size,
      seed: train.seed,
      evalBatches: train.eval_batches,
      timeoutMs: swarm.lease_timeout_s * 1000,
      workerId,
      issuedAt: this.now(),
      step: this.version,
    };
    if (backup) {
      // a backup of a straggler's lease: both compute the same batches, the first answer counts
      backup.group ??= new Set([backup.leaseId]);
      backup.group.add(leaseId);
      lease.group = backup.group;
      lease.step = backup.step;
      this.backups++;
      // a spot check's copy: this worker is now one of the batch's holders (never a check of its own result)
      if (backup.kind === 'train') this.checks.get(backup.batches[0])?.holders.add(workerId);
    }
    this.leases.set(leaseId, lease);
    this.waitingSince.delete(workerId);
    const { workerId: _w, issuedAt: _i, step: _s, group: _g, ...wire } = lease;
    return { ok: true, lease: wire };
  }

  /**
   * a worker's answer to its lease. Keeps no reference to sub.grads once it returns (what it holds on to, it copies):
   * the coordinator recycles the gradient's buffer for the next upload
   */
  submit(workerId: string, sub: Submission): SubmitReply {
    const w = this.workers.get(workerId);
    const refused = (r: SubmitReply): SubmitReply => {
      if (!r.ok && w) w.refused[r.code] = (w.refused[r.code] ?? 0) + 1;
      return r;
    };
    if (w) w.lastSeen = Date.now();
    const l = this.leases.get(sub.leaseId);
    if (!l) {
      const f = this.finished.get(sub.leaseId);
      if (f === 'done') {
        this.lateAnswer(workerId, sub.leaseId);
        return refused(refuse('duplicate', `lease ${sub.leaseId} was already counted`));
      }
      if (f === 'expired') return refused(refuse('expired', `lease ${sub.leaseId} timed out or was released (after ${this.config.swarm.lease_timeout_s} s, a pause or a disconnect) and went back to the queue`));
      return refused(refuse('unknown-lease', `no lease ${sub.leaseId} in run ${this.id}`));
    }
    if (l.workerId !== workerId) return refused(refuse('not-your-lease', `lease ${sub.leaseId} belongs to another worker`));
    if (sub.version !== l.version) {
      return refused(refuse('stale', `computed on weights version ${sub.version} but lease ${sub.leaseId} is for version ${l.version}`));
    }
    const behind = this.version - l.version;
    if (behind > this.config.swarm.max_staleness) {
      this.leases.delete(sub.leaseId);
      this.remember(sub.leaseId, 'expired');
      return refused(refuse('stale', `computed on version ${l.version}, ${behind} behind the current ${this.version} (max_staleness ${this.config.swarm.max_staleness})`));
    }
    const checked = l.kind === 'train' ? this.checkTrain(sub, l.batches.length) : { bad: this.checkEval(sub, l), norm: NaN };
    let bad = checked.bad;
    let norm = checked.norm;
    if (bad?.code === 'outlier' && l.kind === 'train' && this.outlierTaken(l, workerId, sub.grads!)) {
      bad = undefined;
      norm = NaN; // clipped: not a norm for the screen's history
      // three workers saw the spike: that settles a spot check of the batch too (clipped copies, clipped at caps
      // that moved in between, would not compare equal)
      if (l.batches.length === 1 && this.checks.has(l.batches[0])) this.dropCheck(l.batches[0], sub.leaseId);
    }
    if (bad) {
      // the batches are not lost: back to the queue for someone else
      this.expire(sub.leaseId, l, false);
      this.finished.delete(sub.leaseId);
      if (bad.code !== 'bad-message' && bad.code !== 'outlier') this.strike(workerId, `${bad.code}: ${bad.reason}`);
      return refused(bad);
    }
    if (l.kind === 'train' && Number.isFinite(norm)) {
      // a normal gradient for a batch that came back as outliers before: those senders lied, if the word is of a
      // worker with a good record (a stranger's normal answer could be a lie about an honest spike)
      const trusted = this.standing(workerId) === 0;
      for (const b of l.batches) {
        for (const o of this.outliers.get(b)?.senders ?? []) if (o !== workerId && trusted) this.strike(o, `its gradient for batch ${b} was an outlier; another worker's for the same batch was not`);
        this.outliers.delete(b);
      }
    }
    this.leases.delete(sub.leaseId);
    this.remember(sub.leaseId, 'done');
    if (l.group) {
      for (const other of l.group) {
        const o = this.leases.get(other);
        if (other !== sub.leaseId && o) {
          this.leases.delete(other);
          this.remember(other, 'done');
          this.beat(o);
        }
      }
    }
    this.beatenStreak.delete(workerId);
    this.noteDuration(workerId, this.now() - l.issuedAt, l.kind === 'train');
    if (w) w.computeMs += sub.computeMs ?? 0;
    if (l.kind === 'eval') {
      sub.losses!.forEach((v, k) => (this.evalLosses[l.batches[k]] = v));
      if (w) w.evalLeases++;
      this.maybeFinishEval();
    } else if (l.batches.length === 1 && this.checks.has(l.batches[0])) {
      this.spotResult(l.batches[0], { workerId, grads: Float32Array.from(sub.grads!), loss: sub.loss!, computeMs: sub.computeMs ?? 0, norm });
    } else {
      this.apply(l.batches, sub.grads!, sub.loss!, sub.computeMs ?? 0, [workerId], norm);
    }
    const reply: SubmitReply = { ok: true, step: this.version, version: this.version };
    this.maybeCloseStep(false);
    return reply;
  }

  /**
   * An outlier is refused and its batches go to someone else (not back to the sender: see takeTrain). Honest
   * gradients spike too, and the same batch gives the same gradient again, so: a second outlier for a batch is
   * refused as well and the batch stays open for a third opinion, preferably from a worker with a record on another
   * network; a normal answer then strikes both senders (two colluding attackers are no longer each other's second
   * opinion), a third outlier is an honest spike and is taken, clipped to the screen's cap, with nobody blamed. With
   * nobody left to ask, the second is taken clipped. Returns whether this gradient was taken (clipped in place).
   */
  private outlierTaken(l: LeaseRecord, workerId: string, grads: Float32Array): boolean {
    const prior = l.batches.map((b) => this.outliers.get(b)).find((o) => o !== undefined);
    const senders = prior ? [...prior.senders, workerId] : [workerId];
    if (!prior || (senders.length === 2 && this.someoneBut(new Set(senders)))) {
      for (const b of l.batches) this.outliers.set(b, { senders });
      return false;
    }
    this.clipToScreen(grads, l.batches.length);
    for (const b of l.batches) this.outliers.delete(b);
    this.outliersClipped++;
    return true;
  }

  /**
   * adds a train result (gradient summed over `batches`) into the open step and credits its workers; `norm`, its
   * per-batch norm, joins the norm screen's history (NaN: a clipped or median gradient, which does not)
   */
  private apply(batches: number[], grads: Float32Array, loss: number, computeMs: number, credit: string[], norm: number): void {
    const B = this.config.data.batch_size;
    if (Number.isFinite(norm)) this.screen.accept(norm);
    this.gradSum.add(grads);
    if (this.config.swarm.aggregator !== 'mean') {
      const part = Float32Array.from(grads);
      if (batches.length > 1) for (let i = 0; i < part.length; i++) part[i] /= batches.length;
      this.parts.push(part);
    }
    this.stepBatches += batches.length;
    this.stepComputeMs += computeMs;
    this.stepLeases++;
    this.stepLossSum += loss * batches.length;
    for (const b of batches) this.applied.set(b, this.version);
    for (const id of credit) {
      const w = this.workers.get(id);
      if (w) {
        w.samples += batches.length * B;
        w.leases++;
      }
    }
  }

  /** a lease of the open step (train) or of the open eval: its batches are still wanted */
  private current(l: LeaseRecord): boolean {
    return l.kind === 'train' ? l.step === this.version : l.version === this.evalVersion;
  }

  /**
   * Straggler and hoarder insurance (MapReduce's backup tasks): when nothing is queued, so the rest of the step is
   * in or out, a waiting worker is given a copy of a lease (the one with the fewest copies, then the oldest) that
   * has been out for over 3× its holder's usual turnaround (backupAfter), unless it holds that lease (or, for a
   * spot check, the batch's other copy) itself or every copy is still young. Batches are pure functions of their
   * index, so either answer is the same gradient; the first counts and the other is refused as a duplicate. A worker
   * that was itself beaten by a copy gets no copies of others' leases (a slow worker would straggle again).
   */
  private backupFor(workerId: string): LeaseRecord | undefined {
    if (this.workers.get(workerId)?.beaten) return undefined;
    const t = this.now();
    let best: LeaseRecord | undefined;
    let bestCopies = Infinity;
    for (const l of this.leases.values()) {
      if (!this.current(l) || t - l.issuedAt < this.backupAfter(l) || this.opts.answering?.(l.workerId)) continue;
      if (l.kind === 'train' && this.checks.get(l.batches[0])?.holders.has(workerId)) continue;
      // every copy out is late (a backup can straggle too: a hoarder may have taken it) and none is this worker's
      const copies = l.group ? [...l.group].map((id) => this.leases.get(id)).filter((x) => x !== undefined) : [l];
      if (copies.some((c) => c.workerId === workerId || t - c.issuedAt < this.backupAfter(c))) continue;
      // the lease with the fewest copies out first, then the oldest
      if (copies.length < bestCopies || (copies.length === bestCopies && l.issuedAt < best!.issuedAt)) {
        best = l;
        bestCopies = copies.length;
      }
    }
    return best;
  }

  /**
   * ms a lease may be out before a waiting worker gets a copy: 3× its holder's usual turnaround (the median of its
   * recent leases, issue to answer), or 3× the run's for a holder that has answered none (a hoarder never does).
   * Volunteers differ in speed many times over; measured against its own pace a slow volunteer is backed up only
   * when it is late for itself (a lease timeout of a minute no longer decides how long a hoarded batch waits).
   * A newcomer's first lease also carries one-time setup (its GPU compiles the pipelines), so it gets the slack all
   * leases had before (a quarter of the lease timeout), unless its network already sent a worker struck for leases
   * beaten unanswered before it answered anything: a hoarder coming back as new identities gets no slack.
   */
  private backupAfter(l: LeaseRecord): number {
    const own = this.paces.get(l.workerId);
    const usual = Math.max(BACKUP_MIN_MS, BACKUP_FACTOR * (own?.length ? median(own) : this.durations.length ? this.typicalMs : 1000));
    if (own?.length) return usual;
    const w = this.workers.get(l.workerId);
    const newcomer = w !== undefined && !w.beaten && !(w.address !== undefined && this.hoardingNetworks.has(w.address));
    return newcomer ? Math.max(usual, (this.config.swarm.lease_timeout_s * 1000) / 4) : usual;
  }

  /** a lease answered after ms: the holder's pace, and (answers that counted) the run's typical turnaround */
  private noteDuration(workerId: string, ms: number, counted: boolean): void {
    let own = this.paces.get(workerId);
    if (!own) this.paces.set(workerId, (own = []));
    own.push(ms);
    if (own.length > 8) own.shift();
    if (!counted) return;
    this.durations.push(ms);
    if (this.durations.length > 32) this.durations.shift();
    this.typicalMs = median(this.durations);
  }

  /**
   * o's holder was beaten by another worker's copy of its lease (which was out over 3× its usual time): a straggler,
   * or a hoarder that never answers. A straggler answers late (refused as a duplicate, which clears its streak) or
   * asks for its next lease holding the newer weights (lease()); a worker beaten STRIKE_STREAK times in a row with
   * neither gets a strike
   */
  private beat(o: LeaseRecord): void {
    const w = this.workers.get(o.workerId);
    if (!w) return;
    w.beaten = (w.beaten ?? 0) + 1;
    this.beatenLeases.set(o.leaseId, { workerId: o.workerId, issuedAt: o.issuedAt });
    if (this.beatenLeases.size > REMEMBER_LEASES) this.beatenLeases.delete(this.beatenLeases.keys().next().value!);
    const streak = (this.beatenStreak.get(o.workerId)?.n ?? 0) + 1;
    this.beatenStreak.set(o.workerId, { n: streak, version: o.version });
    if (streak % STRIKE_STREAK !== 0) return;
    this.strike(o.workerId, `${streak} of its leases in a row were answered first by another worker's copy (each out over ${BACKUP_FACTOR}× the usual time), none of them by it`);
    // a hoarder: its network's newcomers get no first-lease slack from now on
    if (!this.paces.get(o.workerId)?.length && w.address !== undefined) this.hoardingNetworks.add(w.address);
  }

  /** an answer to a lease another copy already answered: if it was this worker's beaten lease, it was working (a straggler) */
  private lateAnswer(workerId: string, leaseId: string): void {
    const b = this.beatenLeases.get(leaseId);
    if (!b || b.workerId !== workerId) return;
    this.beatenLeases.delete(leaseId);
    this.beatenStreak.delete(workerId);
    this.noteDuration(workerId, this.now() - b.issuedAt, false);
  }

  /**
   * 0: a good record (work accepted or checks passed, off probation, no strikes, no lease beaten unanswered); 1: a
   * stranger (nothing accepted yet, or on probation); 2: a suspect (strikes, or leases beaten by copies, unanswered)
   */
  private standing(workerId: string): 0 | 1 | 2 {
    const w = this.workers.get(workerId);
    if (!w) return 1;
    if (w.strikes > 0 || this.beatenStreak.has(workerId)) return 2;
    if (this.onProbation(workerId)) return 1;
    return w.samples > 0 || w.checksPassed > 0 || w.evalLeases > 0 ? 0 : 1;
  }

  /**
   * ms this worker should wait before taking queued batches (0: take them now). For a moment after batches are
   * queued (the step's opening, a requeue) they go to workers with a good record first, strangers after them and
   * suspects last, so a hoarder's lease is seldom a fresh batch that the step then waits on. A worker waits only
   * while enough idle, active workers of better standing are around to take every queued batch, never past its
   * standing's window (2× the usual turnaround per rank), and not once it has waited STARVE_TURNAROUNDS usual
   * turnarounds (at least a second) for a lease: where the workers with a record can take every batch, a newcomer
   * would otherwise never earn one, and a struck worker never earn its ban.
   */
  private deferFor(workerId: string): number {
    const rank = this.standing(workerId);
    if (rank === 0) return 0;
    const t0 = this.now();
    const window = Math.max(BACKUP_MIN_MS, 2 * (this.typicalMs || BACKUP_MIN_MS));
    const left = rank * window - (t0 - this.queuedAt);
    if (left <= 0) return 0;
    if (!this.waitingSince.has(workerId)) this.waitingSince.set(workerId, t0);
    if (t0 - this.waitingSince.get(workerId)! > Math.max(1000, STARVE_TURNAROUNDS * this.typicalMs)) return 0;
    const busy = new Set<string>();
    for (const l of this.leases.values()) busy.add(l.workerId);
    const queued = this.pending.length + this.evalPending.length;
    const t = Date.now();
    let better = 0;
    for (const w of this.workers.values()) {
      if (!w.connected || w.banned || busy.has(w.workerId) || t - w.lastSeen > ACTIVE_MS || this.standing(w.workerId) >= rank) continue;
      if (++better >= queued) return Math.round(Math.max(10, Math.min(left, window / 2)));
    }
    return 0;
  }

  /** a strike against a worker; at ban_after strikes it is banned from the run and its leases go back */
  private strike(workerId: string, why: string): void {
    const w = this.workers.get(workerId);
    if (!w || w.banned) return;
    w.strikes++;
    if (w.strikes >= this.config.swarm.ban_after) {
      w.banned = `${w.strikes} strikes, the last: ${why}`;
      if (w.address !== undefined) this.bannedNetworks.set(w.address, (this.bannedNetworks.get(w.address) ?? 0) + 1);
      for (const [id, l] of this.leases) if (l.workerId === workerId) this.expire(id, l);
      this.emit('ban', workerId, w.banned);
    }
  }

  /**
   * train batches for a lease. A batch that waits for an opinion (a spot check's copy, an outlier's redo) never
   * goes to a worker that holds or sent one, and waits a moment for a better worker than this one (waitForBetter);
   * a spot check's copy goes alone. A worker on probation gets one batch, checked.
   */
  private takeTrain(workerId: string): number[] {
    const out: number[] = [];
    const q = this.pending;
    const probation = this.onProbation(workerId);
    for (let i = 0; i < q.length && out.length < this.config.swarm.batches_per_lease; ) {
      const b = q[i];
      const c = this.checks.get(b);
      const o = this.outliers.get(b);
      const holders = c?.holders ?? (o ? new Set(o.senders) : undefined);
      if (holders?.has(workerId)) {
        if (this.someoneBut(holders)) {
          i++;
        } else if (c) {
          // nobody else to compute this copy: the check settles on what it has (or, with nothing yet, is dropped and
          // the batch computed once, here)
          q.splice(i, 1);
          if (this.holdsCopy(b)) continue;
          if (c.results.length) {
            this.settle(b, c);
            continue;
          }
          this.checks.delete(b);
          this.spotChecks.skipped++;
          this.pending = q.filter((x) => x !== b);
          return [b];
        } else {
          // alone with an outlier's batch: it may recompute it (a second outlier from it is then taken clipped)
          out.push(b);
          q.splice(i, 1);
        }
        continue;
      }
      if ((c || o || probation) && out.length) break;
      if (holders?.size && this.waitForBetter(workerId, holders)) {
        i++;
        continue;
      }
      q.splice(i, 1);
      if (c) {
        c.holders.add(workerId);
        return [b];
      }
      if (probation && !o && this.someoneBut(new Set([workerId]))) {
        // its result must agree with another worker's before it counts: a second copy goes to the queue's end
        this.checks.set(b, newCheck('probation', workerId));
        q.push(b);
        return [b];
      }
      out.push(b);
      if (o || probation) break;
    }
    return out;
  }

  /** batch b is no longer checked: its queued copies are dropped and the copies out (but lease `keep`) count as done */
  private dropCheck(b: number, keep: string): void {
    this.checks.delete(b);
    this.pending = this.pending.filter((x) => x !== b);
    for (const [id, o] of this.leases) {
      if (id === keep || o.kind !== 'train' || !o.batches.includes(b)) continue;
      this.leases.delete(id);
      this.remember(id, 'done');
    }
  }

  /** whether a copy of batch b is out with some worker now */
  private holdsCopy(b: number): boolean {
    for (const l of this.leases.values()) if (l.kind === 'train' && l.batches.includes(b)) return true;
    return false;
  }

  /** a worker that is connected, not banned and not one of `but`: someone who can give another opinion */
  private someoneBut(but: Set<string>): boolean {
    for (const w of this.workers.values()) if (w.connected && !w.banned && !but.has(w.workerId)) return true;
    return false;
  }

  private active(w: WorkerStats, t = Date.now()): boolean {
    return w.connected && !w.banned && t - w.lastSeen < ACTIVE_MS;
  }

  /**
   * whether an opinion on a batch whose copies `holders` computed should wait for a worker other than this one:
   * never one from the same network as a holder while an active worker from another network is around (twins on
   * one machine or NAT); and, for a moment after it was queued, one with a better standing (a good record first)
   */
  private waitForBetter(workerId: string, holders: Set<string>): boolean {
    const net = this.workers.get(workerId)?.address;
    const nets = new Set([...holders].map((h) => this.workers.get(h)?.address));
    const sameNet = net !== undefined && nets.has(net);
    const rank = this.standing(workerId);
    const window = Math.max(BACKUP_MIN_MS, 2 * (this.typicalMs || BACKUP_MIN_MS));
    const early = rank > 0 && this.now() - this.queuedAt < rank * window;
    if (!sameNet && !early) return false;
    const t = Date.now();
    for (const w of this.workers.values()) {
      if (w.workerId === workerId || holders.has(w.workerId) || !this.active(w, t)) continue;
      const apart = !nets.has(w.address);
      if (sameNet && apart && this.standing(w.workerId) < 2) return true;
      if (early && this.standing(w.workerId) < rank && (apart || !sameNet)) return true;
    }
    return false;
  }

  /** on probation: a run that spot-checks, and fewer checks passed than its probation asks */
  private onProbation(workerId: string): boolean {
    const w = this.workers.get(workerId);
    return this.config.swarm.spot_check_fraction > 0 && w !== undefined && w.checksPassed < (w.probation ?? 0);
  }

  /** how a spot check is judged here (./spot-check.ts): a good record is standing 0 */
  private judgeOptions(c: SpotCheck, final = false): JudgeOptions {
    const good = (id: string) => this.standing(id) === 0;
    return { tol: this.config.swarm.spot_check_tolerance, good, confirm: (pair) => this.confirmPair(c, pair, good), final };
  }

  /**
   * whether a pair that agrees gets a third copy: a share of the passes at random, and always when neither of the
   * two has a good record and another active worker (not holding a copy) is around to compute one. At a run's start
   * nobody has a record yet, and two colluders handed the two copies of a batch would otherwise pass each other.
   */
  private confirmPair(c: SpotCheck, pair: string[], good: (id: string) => boolean): boolean {
    if (this.rng.uniform(0, 1) < this.config.swarm.spot_check_confirm) return true;
    if (pair.some(good)) return false;
    for (const w of this.workers.values()) if (!c.holders.has(w.workerId) && this.active(w)) return true;
    return false;
  }

  /** a result for a spot-checked batch: wait for the other copies, then apply the verdict (./spot-check.ts) */
  private spotResult(b: number, r: CheckResult): void {
    const c = this.checks.get(b)!;
    c.results.push(r);
    if (!this.someoneBut(c.holders) && !this.holdsCopy(b)) {
      // nobody else to compute a copy: drop the copy still queued and settle on what is there
      const i = this.pending.indexOf(b);
      if (i >= 0) this.pending.splice(i, 1);
      return this.settle(b, c);
    }
    const v = judge(c, this.judgeOptions(c));
    if (v.kind === 'wait') return;
    if (v.kind === 'more') {
      if (v.confirming && !c.confirming) this.spotChecks.confirmed++;
      c.confirming = v.confirming;
      c.need = c.results.length + 1;
      this.pending.push(b);
      this.queuedAt = this.now();
      return;
    }
    this.decide(b, c, v);
  }

  /** a check that can get no more copies: its verdict on what it has (blaming nobody unless it is clear) */
  private settle(b: number, c: SpotCheck): void {
    const v = judge(c, this.judgeOptions(c, true));
    if (c.results.length === 1) this.spotChecks.skipped++;
    this.decide(b, c, v, c.results.length === 1);
    // settled while handing out a lease (takeTrain), this may have been the step's last batch: close it after
    queueMicrotask(() => this.maybeCloseStep(false));
  }

  private decide(b: number, c: SpotCheck, v: ReturnType<typeof judge>, skipped = false): void {
    this.checks.delete(b);
    const rs = c.results;
    if (v.kind === 'split') {
      // no two agree: the coordinate-wise median, nobody blamed
      const med = new Float32Array(this.layout.size);
      coordinateMedian(rs.map((r) => r.grads), med);
      this.spotChecks.failed++;
      this.apply([b], med, rs.reduce((a, r) => a + r.loss, 0) / rs.length, rs.at(-1)!.computeMs, [], NaN);
      return;
    }
    if (v.kind !== 'agreed') return;
    const tol = this.config.swarm.spot_check_tolerance;
    const first = rs[v.honest[0]];
    if (!skipped) {
      if (v.liars.length) this.spotChecks.failed++;
      else this.spotChecks.passed++;
      for (const k of v.honest) this.workers.get(rs[k].workerId)!.checksPassed++;
    }
    for (const k of v.liars) {
      const liar = rs[k].workerId;
      this.workers.get(liar)!.checksFailed++;
      this.emit('spot-check', { batch: b, failed: liar });
      this.strike(liar, `batch ${b}: its gradient differs from ${v.honest.length} others that agree by ${relDistance(rs[k].grads, first.grads).toPrecision(3)} (tolerance ${tol})`);
    }
    const credit = v.honest.map((k) => rs[k].workerId);
    this.apply([b], first.grads, first.loss, v.honest.reduce((a, k) => a + rs[k].computeMs, 0) / v.honest.length, credit, first.norm);
  }

  /** shape and loss, then one pass over the gradient: every element finite (else the first bad one named), and its
   * per-batch norm (NaN if it has none) through the norm screen */
  private checkTrain(sub: Submission, batches: number): { bad?: Refusal; norm: number } {
    const n = this.layout.size;
    if (!(sub.grads instanceof Float32Array)) return { bad: refuse('bad-shape', 'a train submission carries grads (Float32Array)'), norm: NaN };
    if (sub.grads.length !== n) return { bad: refuse('bad-shape', `grads has ${sub.grads.length} elements; this ${this.config.model.model} model has ${n} parameters`), norm: NaN };
    if (sub.loss === undefined || !Number.isFinite(sub.loss)) return { bad: refuse('non-finite', `loss is ${sub.loss}`), norm: NaN };
    const g = sub.grads;
    const squares = this.gradSum.sumOfSquares(g);
    if (!Number.isFinite(squares)) {
      const i = firstNonFinite(g);
      if (i >= 0) {
        const p = this.layout.params.find((q) => i >= q.offset && i < q.offset + q.numel)!;
        return { bad: refuse('non-finite', `grads[${i}] is ${g[i]} (in ${p.name})`), norm: NaN };
      }
      // every element finite but the sum overflowed (cannot happen in float64 for float32 elements): too large to screen
      return { bad: refuse('outlier', `the gradient's sum of squares overflows (${squares})`), norm: NaN };
    }
    const norm = Math.sqrt(squares) / batches;
    const why = this.screen.check(norm);
    return { bad: why ? refuse('outlier', why) : undefined, norm };
  }

  /** scale a gradient (summed over `batches`) down to the norm screen's cap, in place */
  private clipToScreen(g: Float32Array, batches: number): void {
    const norm = Math.sqrt(this.gradSum.sumOfSquares(g)) / batches;
    const cap = this.screen.cap;
    if (!(norm > cap) || !Number.isFinite(norm)) return;
    const k = cap / norm;
    for (let i = 0; i < g.length; i++) g[i] *= k;
  }

  private checkEval(sub: Submission, l: LeaseRecord) {
    if (!sub.losses || sub.losses.length !== l.batches.length) return refuse('bad-shape', `an eval submission carries ${l.batches.length} losses, one per batch, got ${sub.losses?.length ?? 'none'}`);
    if (!sub.losses.every(Number.isFinite)) return refuse('non-finite', `eval losses ${JSON.stringify(sub.losses)}`);
    return undefined;
  }

  private remember(leaseId: string, how: 'done' | 'expired'): void {
    this.finished.set(leaseId, how);
    if (this.finished.size > REMEMBER_LEASES) this.finished.delete(this.finished.keys().next().value!);
  }

  /** lease l goes back: its batches return to the queue if they still belong to the open step / eval */
  private expire(id: string, l: LeaseRecord, mark = true): void {
    this.leases.delete(id);
    if (mark) this.remember(id, 'expired');
    if (l.group) {
      l.group.delete(id);
      if ([...l.group].some((o) => this.leases.has(o))) return; // a backup still computes these batches
    }
    if (!this.current(l)) return;
    if (l.kind === 'eval') this.evalPending.unshift(...l.batches);
    else this.pending.unshift(...l.batches);
    this.queuedAt = this.now();
  }

  private tick(): void {
    if (this.status !== 'running') return;
    const t = this.now();
    for (const [id, l] of this.leases) if (t - l.issuedAt > l.timeoutMs) this.expire(id, l);
    const { step_timeout_s, min_batch_size } = this.config.swarm;
    if (step_timeout_s > 0 && t - this.stepStart > step_timeout_s * 1000 && this.stepBatches * this.config.data.batch_size >= min_batch_size) this.maybeCloseStep(true);
  }

  private queueEval(): void {
    const n = this.config.train.eval_batches;
    this.evalVersion = this.version;
    this.evalPending = Array.from({ length: n }, (_, i) => i);
    this.evalLosses = new Array(n).fill(undefined);
    this.queuedAt = this.now();
  }

  private evalOpen(): boolean {
    return this.evalVersion === this.version && (this.evalPending.length > 0 || this.evalLosses.some((v) => v === undefined));
  }

  private maybeFinishEval(): void {
    if (this.evalVersion !== this.version || this.evalPending.length || this.evalLosses.some((v) => v === undefined)) return;
    const valLoss = (this.evalLosses as number[]).reduce((a, b) => a + b, 0) / this.evalLosses.length;
    this.evalVersion = -1;
    const rec = { step: this.version, valLoss, t: (this.now() - this.startedAt) / 1000 };
    this.valHistory.push(rec);
    this.emit('eval', { step: rec.step, valLoss });
    this.emit('progress', { ...this.progress(), valLoss });
    if (this.version >= this.maxSteps) this.finish();
  }

  private openStep(): void {
    const s = this.version;
    // after the last step only the final eval is left: no train batches beyond max_steps
    this.pending = s >= this.maxSteps ? [] : Array.from({ length: this.accum }, (_, m) => s * this.accum + m);
    this.sum.fill(0);
    this.stepBatches = 0;
    this.stepLossSum = 0;
    this.stepComputeMs = 0;
    this.stepLeases = 0;
    this.parts = [];
    this.checks = new Map();
    this.outliers = new Map();
    const frac = this.config.swarm.spot_check_fraction;
    if (frac > 0) {
      const rng = new Rng((this.config.train.seed ^ Math.imul(s + 1, 0x2545f491)) >>> 0);
      for (const b of [...this.pending]) {
        if (rng.uniform(0, 1) < frac) {
          this.checks.set(b, newCheck('sample'));
          this.pending.push(b); // the second copy, for another worker
        }
      }
    }
    this.stepStart = this.queuedAt = this.now();
  }

  /** closes the step when its batches are all in (or, `early`, at the step deadline with what arrived) */
  private maybeCloseStep(early: boolean): void {
    if (this.status !== 'running' || this.version >= this.maxSteps || this.evalOpen()) return;
    if (!early && (this.pending.length || this.stepBatches < this.accum)) return;
    if (this.stepBatches === 0) return;
    const t0 = this.now();
    const { optim, data } = this.config;
    const step = this.version;
    this.aggregate();
    const clip = clipByNorm(Math.sqrt(this.gradSum.sumOfSquares(this.sum)), optim.grad_clip, this.stepBatches);
    if (!clip.finite) {
      // every submission was finite, so the sum overflowed: drop the step's gradients and redo its batches
      this.emit('error', new Error(`step ${step + 1}: the summed gradient overflowed (norm ${clip.norm}); the step's batches are retried`));
      this.openStep();
      return;
    }
    const lr = learningRate(step, optim);
    // in place once nobody reads the current array (its downloads are over: in a synchronous swarm, by the time its
    // last gradient arrives), so the run holds one copy of the weights; else into another array, and the current one
    // stays as it was for whoever still reads it: the version before last's once free, or a new one
    const inUse = this.opts.inUse;
    if (inUse && !inUse(this.params)) {
      this.opt.step(this.params, this.sum, lr, clip.gradScale);
      this.previous = undefined;
    } else {
      const spare = this.previous && inUse && !inUse(this.previous) ? this.previous : undefined;
      const next = spare ?? new Float32Array(this.layout.size);
      this.opt.step(this.params, this.sum, lr, clip.gradScale, next);
      this.previous = inUse && this.params;
      this.params = next;
    }
    this.version = step + 1;
    // leases still out for the closed step (early close) stay valid within max_staleness; their batches are not re-queued
    const end = this.now();
    const rec: StepRecord = {
      step: this.version,
      loss: this.stepLossSum / this.stepBatches,
      lr,
      gradNorm: clip.norm,
      samples: this.stepBatches * data.batch_size,
      ms: end - this.stepStart,
      aggregateMs: end - t0,
      computeMs: this.stepLeases ? this.stepComputeMs / this.stepLeases : 0,
      t: (end - this.startedAt) / 1000,
      tokensPerSec: (this.stepBatches * data.batch_size * data.block_size * 1000) / Math.max(1e-3, end - this.stepStart),
    };
    this.history.push(rec);
    this.openStep();
    const { eval_interval, checkpoint_interval } = this.config.train;
    const last = this.version >= this.maxSteps;
    if (eval_interval > 0 && (this.version % eval_interval === 0 || last)) this.queueEval();
    // the new weights first: the workers' next leases wait on them, the console's curves do not
    this.emit('weights', this.version, this.params);
    this.emit('step', rec);
    this.emit('progress', this.progress());
    if ((checkpoint_interval > 0 && this.version % checkpoint_interval === 0) || last) this.checkpoint();
    if (last && !this.evalOpen()) this.finish();
  }

  /**
   * the step's gradient into this.sum as stepBatches × the aggregate (so clipping and AdamW read it as the mean
   * path does): 'mean' leaves the running sum as it is; the robust aggregators replace it; momentum mixes in
   */
  private aggregate(): void {
    const sw = this.config.swarm;
    const n = this.sum.length;
    if (sw.aggregator !== 'mean' && this.parts.length) {
      const agg = new Float32Array(n);
      if (sw.aggregator === 'trimmed_mean') trimmedMean(this.parts, sw.trim_fraction, agg);
      else {
        const start = new Float32Array(n);
        coordinateMedian(this.parts, start);
        centeredClip(this.parts, start, sw.clip_tau, sw.clip_iters, agg);
      }
      for (let i = 0; i < n; i++) this.sum[i] = agg[i] * this.stepBatches;
    }
    if (sw.momentum > 0) {
      const m = (this.momentumBuf ??= new Float32Array(n));
      const k = this.stepBatches;
      for (let i = 0; i < n; i++) {
        m[i] = sw.momentum * m[i] + (1 - sw.momentum) * (this.sum[i] / k);
        this.sum[i] = m[i] * k;
      }
    }
  }

  private finish(): void {
    if (this.status === 'done') return;
    this.status = 'done';
    this.dispose();
    this.emit('status', 'done', `finished ${this.maxSteps} steps`);
    this.emit('progress', this.progress());
  }

  /** write a checkpoint of the current state (copies now; the write is queued behind earlier ones) */
  checkpoint(): Promise<unknown> {
    const save = this.opts.saveCheckpoint;
    if (!save) return Promise.resolve();
    const step = this.version;
    const params = Float32Array.from(this.params); // the write is queued: the array may be written again by then
    const state: OptimizerState = { step: this.opt.steps, exp_avg: Float32Array.from(this.opt.exp_avg), exp_avg_sq: Float32Array.from(this.opt.exp_avg_sq) };
    this.saving = this.saving.then(() =>
      save(step, params, state).then(
        (where) => {
          this.lastCheckpoint = where;
          this.emit('checkpoint', where, step);
        },
        (e: Error) => this.emit('error', new Error(`checkpoint at step ${step} failed: ${e.message}`)),
      ),
    );
    return this.saving;
  }

  /** wait for queued checkpoint writes */
  flushCheckpoints(): Promise<unknown> {
    return this.saving;
  }

  progress(): Progress {
    const last = this.history.at(-1);
    return {
      runId: this.id,
      step: this.version,
      maxSteps: this.maxSteps,
      loss: last?.loss,
      tokensPerSec: last?.tokensPerSec ?? 0,
      workers: this.connectedWorkers,
      status: this.status,
    };
  }

  /** the run's share of volunteers against the other active runs */
  setWeight(w: number): void {
    if (!(Number.isFinite(w) && w > 0)) throw new Error(`weight must be a number > 0, got ${w}`);
    this.config.swarm.weight = w;
  }

  /** the volunteers' records and the norm screen's history, to keep beside the checkpoints */
  exportState(): RunState {
    return {
      step: this.version,
      workers: [...this.workers.values()].map((w) => ({ ...w, refused: { ...w.refused } })),
      bannedNetworks: Object.fromEntries(this.bannedNetworks),
      norms: this.screen.snapshot(),
    };
  }

  /** put back what exportState kept (after a restart): every volunteer disconnected until it comes back */
  restoreState(st: RunState): void {
    for (const w of st.workers ?? []) {
      if (typeof w?.workerId !== 'string') continue;
      this.workers.set(w.workerId, { ...w, connected: false });
    }
    for (const [net, n] of Object.entries(st.bannedNetworks ?? {})) if (typeof n === 'number') this.bannedNetworks.set(net, n);
    if (st.norms) this.screen.restore(st.norms);
  }

  /** put back the curves of a resumed run (steps and evals up to its checkpoint), from the metrics file */
  restoreHistory(rows: Record<string, number>[]): void {
    for (const r of rows) {
      if (typeof r.valLoss === 'number') this.valHistory.push({ step: r.step, valLoss: r.valLoss, t: r.t ?? 0 });
      else if (typeof r.loss === 'number') this.history.push(r as unknown as StepRecord);
    }
  }

  /** the optimizer settings a checkpoint records */
  optimizerSettings() {
    return optimizerSettings(this.config);
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.leases.clear();
  }
}
