// One swarm training run on the coordinator: the weights, the optimizer, the leases and the step accounting.
// Synchronous data parallelism in the manner of hivemind's target batch:
//
//   step s (0-based) trains on train batches s·A .. s·A + A − 1, A = target_batch_size / batch_size, each batch
//   dataset.batch('train', seed, i, B, T): exactly the batches a single worker with grad_accum_steps = A takes.
//   They are handed out as leases (batches_per_lease each) on weights version s; the gradients that come back
//   (each the sum over its lease's batches of every batch's mean-loss gradient) are added into one sum as they
//   arrive (memory O(model), not O(workers × model)). When all A batches are in, the step closes: clipGrads(sum,
//   grad_clip, A), AdamW at learningRate(s) on the CPU, version = s + 1, and the new weights are broadcast.
//
// Every batch of a step is applied once: a lease id is counted once; a lease that times out or whose worker
// leaves goes back to the queue (and a late answer to it is refused as expired); a refused submission (bad shape,
// NaN) puts its batches back. With step_timeout_s a step may close early with ≥ min_batch_size rows: the batches
// still out then are skipped, and their answers count in the next step if within max_staleness versions.
// Every eval_interval steps (and at 0 and the end) the fixed validation batches go out as eval leases on the
// current weights; the next step closes only after they are in, so they see exactly those weights.
import { EventEmitter } from 'node:events';
import type { CharTokenizer } from '../../shared/data/tokenizer.ts';
import type { TokenDataset } from '../../shared/data/dataset.ts';
import type { OptimizerState } from '../../shared/models/checkpoint.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout, type ParamLayout } from '../../shared/models/layout.ts';
import { refuse, type Lease, type LeaseReply, type Progress, type RunStatus, type SubmitReply, type Submission } from '../../shared/protocol.ts';
import { CpuAdamW } from '../../shared/train/adamw-cpu.ts';
import { clipGrads } from '../../shared/train/clip.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { learningRate } from '../../shared/train/schedule.ts';
import { optimizerSettings } from '../../client/train/trainer.ts';
import { Rng } from '../../shared/rng.ts';
import { centeredClip, coordinateMedian, median, NormScreen, relDistance, sumOfSquares, trimmedMean } from './robust.ts';

export interface WorkerInfo {
  workerId: string;
  kind: string;
  name?: string;
  adapter?: string;
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
}

/** a spot-checked batch: the results so far (each a per-batch mean gradient), from distinct workers */
interface SpotCheck {
  /** results wanted before deciding: 2, or 3 after a disagreement */
  need: number;
  results: { workerId: string; grads: Float32Array; loss: number; computeMs: number }[];
  /** workers that hold or held a lease of this batch (a batch is never checked by the worker it checks) */
  holders: Set<string>;
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
}

// The two passes over every gradient that arrives (bench/swarm.ts measures them), unrolled by four as V8 does not
// vectorise: sumOfSquares (./robust.ts), which is the finite check and the norm screen's norm at once, and addInto.

/** index of the first NaN or ±Inf in g, or -1 (only to name the element once sumOfSquares found one) */
function firstNonFinite(g: Float32Array): number {
  for (let k = 0; k < g.length; k++) if (!Number.isFinite(g[k])) return k;
  return -1;
}

/** sum += g elementwise (same length) */
function addInto(sum: Float32Array, g: Float32Array): void {
  const n = sum.length;
  const m = n & ~3;
  let i = 0;
  for (; i < m; i += 4) {
    sum[i] += g[i];
    sum[i + 1] += g[i + 1];
    sum[i + 2] += g[i + 2];
    sum[i + 3] += g[i + 3];
  }
  for (; i < n; i++) sum[i] += g[i];
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
  readonly params: Float32Array;
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
  private readonly sum: Float32Array;
  private stepBatches = 0;
  private stepLossSum = 0;
  private stepComputeMs = 0;
  private stepLeases = 0;
  /** robust aggregators: each applied lease's per-batch mean gradient */
  private parts: Float32Array[] = [];
  private momentumBuf?: Float32Array;
  private readonly screen: NormScreen;
  /** batch → the worker whose gradient for it was refused as an outlier (this step) */
  private outliers = new Map<number, string>();
  /** outliers taken clipped after a second opinion agreed the batch's gradient is large */
  outliersClipped = 0;
  /** backup leases handed out for stragglers */
  backups = 0;
  private durations: number[] = [];
  private typicalMs = 0;
  /** each worker's recent lease turnarounds (issue to answer, ms): a lease is late against its holder's own pace */
  private readonly paces = new Map<string, number[]>();
  /** worker → its leases in a row that another copy answered first, with no answer from it since */
  private readonly beatenStreak = new Map<string, number>();
  /** a beaten lease → its holder and issue time (a late answer to it still shows the holder is working) */
  private readonly beatenLeases = new Map<string, { workerId: string; issuedAt: number }>();
  /** when batches last went into a queue (the step's opening, a requeue): the window for ranking who takes them */
  private queuedAt = 0;
  private checks = new Map<number, SpotCheck>();
  /** spot-check outcomes: passed, failed (a tie broken by a third result), skipped (no second worker around) */
  readonly spotChecks = { passed: 0, failed: 0, skipped: 0 };
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
    this.sum = new Float32Array(this.layout.size);
    this.screen = new NormScreen(swarm.norm_screen);
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
    else this.workers.set(w.workerId, { ...w, joinedAt: t, lastSeen: t, samples: 0, leases: 0, evalLeases: 0, refused: {}, computeMs: 0, connected: true, strikes: 0, checksPassed: 0, checksFailed: 0 });
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

  lease(workerId: string): LeaseReply {
    const w = this.workers.get(workerId);
    if (w) w.lastSeen = Date.now();
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
    const { workerId: _w, issuedAt: _i, step: _s, group: _g, ...wire } = lease;
    return { ok: true, lease: wire };
  }

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
    let bad = l.kind === 'train' ? this.checkTrain(sub, l.batches.length) : this.checkEval(sub, l);
    // An outlier is refused once and its batches go to someone else. Honest gradients spike too (and the same batch
    // gives the same gradient again), so a second outlier for one of those batches is taken, clipped to the
    // screen's cap, and nobody is blamed; if instead the batch comes back normal from another worker, the first
    // sender gets the strike (see apply's caller below).
    if (bad?.code === 'outlier' && l.kind === 'train') {
      if (l.batches.some((b) => this.outliers.has(b))) {
        this.clipToScreen(sub.grads!, l.batches.length);
        for (const b of l.batches) this.outliers.delete(b);
        this.outliersClipped++;
        bad = undefined;
      } else for (const b of l.batches) this.outliers.set(b, workerId);
    }
    if (bad) {
      // the batches are not lost: back to the queue for someone else
      this.expire(sub.leaseId, l, false);
      this.finished.delete(sub.leaseId);
      if (bad.code !== 'bad-message' && bad.code !== 'outlier') this.strike(workerId, `${bad.code}: ${bad.reason}`);
      return refused(bad);
    }
    if (l.kind === 'train') {
      for (const b of l.batches) {
        const first = this.outliers.get(b);
        if (first !== undefined && first !== workerId) this.strike(first, `its gradient for batch ${b} was an outlier; another worker's for the same batch was not`);
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
      this.spotResult(l, workerId, sub);
    } else {
      this.apply(l.batches, l.B, sub.grads!, sub.loss!, sub.computeMs ?? 0, [workerId]);
    }
    const reply: SubmitReply = { ok: true, step: this.version, version: this.version };
    this.maybeCloseStep(false);
    return reply;
  }

  /** adds a train result (gradient summed over `batches`) into the open step and credits its workers */
  private apply(batches: number[], B: number, grads: Float32Array, loss: number, computeMs: number, credit: string[]): void {
    addInto(this.sum, grads);
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
      if (!this.current(l) || t - l.issuedAt < this.backupAfter(l)) continue;
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
   * recent leases, issue to answer), or 3× the run's for a holder that has answered none yet (a hoarder never has).
   * Volunteers differ in speed many times over; measured against its own pace a slow volunteer is backed up only
   * when it is late for itself (a lease timeout of a minute no longer decides how long a hoarded batch waits).
   */
  private backupAfter(l: LeaseRecord): number {
    const own = this.paces.get(l.workerId);
    const usual = own?.length ? median(own) : this.typicalMs || 1000;
    return Math.max(BACKUP_MIN_MS, BACKUP_FACTOR * usual);
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
   * or a hoarder that never answers. A straggler answers late (refused as a duplicate, which clears its streak); a
   * worker beaten STRIKE_STREAK times in a row without answering any of them gets a strike
   */
  private beat(o: LeaseRecord): void {
    const w = this.workers.get(o.workerId);
    if (!w) return;
    w.beaten = (w.beaten ?? 0) + 1;
    this.beatenLeases.set(o.leaseId, { workerId: o.workerId, issuedAt: o.issuedAt });
    if (this.beatenLeases.size > REMEMBER_LEASES) this.beatenLeases.delete(this.beatenLeases.keys().next().value!);
    const streak = (this.beatenStreak.get(o.workerId) ?? 0) + 1;
    this.beatenStreak.set(o.workerId, streak);
    if (streak % STRIKE_STREAK === 0) this.strike(o.workerId, `${streak} of its leases in a row were answered first by another worker's copy (each out over ${BACKUP_FACTOR}× the usual time), none of them by it`);
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
   * 0: a good record (work accepted or checks passed, no strikes, no lease beaten unanswered); 1: a stranger
   * (nothing accepted yet); 2: a suspect (strikes, or its last leases beaten by copies and never answered)
   */
  private standing(workerId: string): 0 | 1 | 2 {
    const w = this.workers.get(workerId);
    if (!w) return 1;
    if (w.strikes > 0 || this.beatenStreak.has(workerId)) return 2;
    return w.samples > 0 || w.checksPassed > 0 || w.evalLeases > 0 ? 0 : 1;
  }

  /**
   * ms this worker should wait before taking queued batches (0: take them now). For a moment after batches are
   * queued (the step's opening, a requeue) they go to workers with a good record first, strangers after them and
   * suspects last, so a hoarder's lease is seldom a fresh batch that the step then waits on. A worker waits only
   * while enough idle, active workers of better standing are around to take every queued batch, and never past
   * its standing's window (2× the usual turnaround per rank).
   */
  private deferFor(workerId: string): number {
    const rank = this.standing(workerId);
    if (rank === 0) return 0;
    const window = Math.max(BACKUP_MIN_MS, 2 * (this.typicalMs || BACKUP_MIN_MS));
    const left = rank * window - (this.now() - this.queuedAt);
    if (left <= 0) return 0;
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
      for (const [id, l] of this.leases) if (l.workerId === workerId) this.expire(id, l);
      this.emit('ban', workerId, w.banned);
    }
  }

  /** train batches for a lease: spot-checked ones alone and never to a worker that already holds them */
  private takeTrain(workerId: string): number[] {
    const out: number[] = [];
    const q = this.pending;
    for (let i = 0; i < q.length && out.length < this.config.swarm.batches_per_lease; ) {
      const b = q[i];
      // a batch whose gradient this worker sent as an outlier goes to someone else (else an attacker would take its
      // batch straight back and have the second try clipped in); alone, it may recompute it
      if (this.outliers.get(b) === workerId && this.connectedWorkers > 1) {
        i++;
        continue;
      }
      const c = this.checks.get(b);
      if (c) {
        // with nobody else to check against, the check is dropped (and counted as skipped)
        if (c.holders.has(workerId) && this.connectedWorkers < 2) {
          q.splice(i, 1);
          if (c.results.length === 1 && c.need === 2) this.resolveSingle(b, c);
          continue;
        }
        if (c.holders.has(workerId) || out.length) {
          i++;
          continue;
        }
        c.holders.add(workerId);
        q.splice(i, 1);
        return [b];
      }
      out.push(b);
      q.splice(i, 1);
    }
    return out;
  }

  private resolveSingle(b: number, c: SpotCheck): void {
    const r = c.results[0];
    this.checks.delete(b);
    this.spotChecks.skipped++;
    this.apply([b], this.config.data.batch_size, r.grads, r.loss, r.computeMs, [r.workerId]);
  }

  /** a result for a spot-checked batch: wait for its twin, compare, break ties with a third */
  private spotResult(l: LeaseRecord, workerId: string, sub: Submission): void {
    const b = l.batches[0];
    const c = this.checks.get(b)!;
    c.results.push({ workerId, grads: Float32Array.from(sub.grads!), loss: sub.loss!, computeMs: sub.computeMs ?? 0 });
    if (c.results.length === 1 && this.connectedWorkers < 2) {
      // nobody to compare with: drop the copy still queued and apply
      const i = this.pending.indexOf(b);
      if (i >= 0) this.pending.splice(i, 1);
      return this.resolveSingle(b, c);
    }
    if (c.results.length < c.need) return;
    const tol = this.config.swarm.spot_check_tolerance;
    const [r0, r1, r2] = c.results;
    if (c.need === 2) {
      if (relDistance(r0.grads, r1.grads) <= tol) {
        this.checks.delete(b);
        this.spotChecks.passed++;
        for (const r of c.results) this.workers.get(r.workerId)!.checksPassed++;
        this.apply([b], l.B, r0.grads, r0.loss, (r0.computeMs + r1.computeMs) / 2, [r0.workerId, r1.workerId]);
        return;
      }
      c.need = 3; // disagreement: a third volunteer decides
      this.pending.push(b);
      this.queuedAt = this.now();
      return;
    }
    // three results: the pair that agrees wins, the odd one out gets a strike
    const pairs: [number, number, number][] = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 2, 0],
    ];
    this.checks.delete(b);
    const agree = pairs.find(([i, j]) => relDistance(c.results[i].grads, c.results[j].grads) <= tol);
    if (!agree) {
      // no two agree: take the coordinate-wise median of the three, blame nobody
      const med = new Float32Array(this.layout.size);
      coordinateMedian([r0.grads, r1.grads, r2.grads], med);
      this.spotChecks.failed++;
      this.apply([b], l.B, med, (r0.loss + r1.loss + r2.loss) / 3, r2.computeMs, []);
      return;
    }
    const [i, j, odd] = agree;
    this.spotChecks.failed++;
    for (const k of [i, j]) this.workers.get(c.results[k].workerId)!.checksPassed++;
    const liar = c.results[odd].workerId;
    this.workers.get(liar)!.checksFailed++;
    this.emit('spot-check', { batch: b, failed: liar });
    this.strike(liar, `batch ${b}: its gradient differs from two others by ${relDistance(c.results[odd].grads, c.results[i].grads).toPrecision(3)} (tolerance ${tol})`);
    this.apply([b], l.B, c.results[i].grads, c.results[i].loss, c.results[i].computeMs, [c.results[i].workerId, c.results[j].workerId]);
  }

  /** shape and loss, then one pass over the gradient: every element finite (else the first bad one named), and its
   * per-batch norm through the norm screen */
  private checkTrain(sub: Submission, batches: number) {
    const n = this.layout.size;
    if (!(sub.grads instanceof Float32Array)) return refuse('bad-shape', 'a train submission carries grads (Float32Array)');
    if (sub.grads.length !== n) return refuse('bad-shape', `grads has ${sub.grads.length} elements; this ${this.config.model.model} model has ${n} parameters`);
    if (sub.loss === undefined || !Number.isFinite(sub.loss)) return refuse('non-finite', `loss is ${sub.loss}`);
    const g = sub.grads;
    const squares = sumOfSquares(g);
    if (!Number.isFinite(squares)) {
      const i = firstNonFinite(g);
      if (i >= 0) {
        const p = this.layout.params.find((q) => i >= q.offset && i < q.offset + q.numel)!;
        return refuse('non-finite', `grads[${i}] is ${g[i]} (in ${p.name})`);
      }
      // every element finite but the sum overflowed (cannot happen in float64 for float32 elements): too large to screen
      return refuse('outlier', `the gradient's sum of squares overflows (${squares})`);
    }
    const why = this.screen.check(Math.sqrt(squares) / batches);
    return why ? refuse('outlier', why) : undefined;
  }

  /** scale a gradient (summed over `batches`) down to the norm screen's cap, in place */
  private clipToScreen(g: Float32Array, batches: number): void {
    const norm = Math.sqrt(sumOfSquares(g)) / batches;
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
          this.checks.set(b, { need: 2, results: [], holders: new Set() });
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
    const clip = clipGrads(this.sum, optim.grad_clip, this.stepBatches);
    if (!clip.finite) {
      // every submission was finite, so the sum overflowed: drop the step's gradients and redo its batches
      this.emit('error', new Error(`step ${step + 1}: the summed gradient overflowed (norm ${clip.norm}); the step's batches are retried`));
      this.openStep();
      return;
    }
    const lr = learningRate(step, optim);
    this.opt.step(this.params, this.sum, lr, clip.gradScale);
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
    this.emit('step', rec);
    this.emit('weights', this.version, this.params);
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
    const params = Float32Array.from(this.params);
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
