// A simulated volunteer for the reliability suites: a real socket.io client (msgpack frames) that speaks the
// protocol as client/worker/loop.ts does (hello, join, the run's token file over HTTP, lease → compute → submit;
// the weights of each lease's version over HTTP, GET weightsPath) but computes on the CPU with the float64
// reference model, so its gradients are the real ones. Any break (a cut, the socket closed under it) starts the
// session over: hello (with the identity token the first welcome gave it, as a volunteer's page keeps it), join, a
// fresh copy of the weights. An attacker is the same worker with another `onLease`
// and `onSession` (./attacks.ts); a fault is a worker that dies or stalls at a chosen moment (./faults.ts).
import { io, type Socket } from 'socket.io-client';
import { parser } from '../../shared/codec.ts';
import { TokenDataset } from '../../shared/data/dataset.ts';
import type { ModelConfig } from '../../shared/models/config.ts';
import { modelLoss, modelLossAndGrads } from '../../shared/models/reference/index.ts';
import {
  goneVersion,
  PROTOCOL_VERSION,
  type ClientToServerEvents,
  type JoinReply,
  type Lease,
  type LeaseReply,
  type RunInfo,
  type ServerToClientEvents,
  type Submission,
  type SubmitReply,
  weightsPath,
} from '../../shared/protocol.ts';
import { tensor } from '../../shared/tensor.ts';

export type SimSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface SimOptions {
  /** the coordinator, ending in / */
  url: string;
  runId: string;
  name: string;
  /** what the worker does with a lease (default: computes it honestly and submits) */
  onLease?: (w: SimWorker, lease: Lease) => Promise<void>;
  /** run once per session, after the join (attackers that probe the protocol) */
  onSession?: (w: SimWorker) => Promise<void>;
  /** ms an honest answer takes besides the CPU's own time (a volunteer's GPU is not instant) */
  computeMs?: number;
  ackTimeoutMs?: number;
}

export class SessionEnded extends Error {}

/** the run's token file, fetched once per process per file */
const datasets = new Map<string, Promise<TokenDataset>>();

export const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** a socket.io client as a volunteer's: websocket, msgpack, socket.io's own reconnection (fast, for tests) */
export function openSocket(url: string, o: { reconnect?: boolean; auth?: Record<string, unknown> } = {}): SimSocket {
  return io(url, {
    parser,
    transports: ['websocket'],
    forceNew: true,
    reconnection: o.reconnect ?? true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 400,
    randomizationFactor: 0,
    auth: o.auth,
  }) as SimSocket;
}

export async function connected(s: SimSocket, ms = 10_000): Promise<void> {
  if (s.connected) return;
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => {
      s.off('connect', on);
      fail(new SessionEnded('could not reach the coordinator'));
    }, ms);
    const on = () => {
      clearTimeout(t);
      ok();
    };
    s.once('connect', on);
    if (!s.active) s.connect();
  });
}

/** the ws WebSocket under a connected socket.io client (engine.io's websocket transport) */
export function rawWs(s: SimSocket): { _socket: { write(b: Uint8Array): boolean; destroy(): void }; terminate(): void } | undefined {
  return (s.io.engine as unknown as { transport?: { ws?: ReturnType<typeof rawWs> } }).transport?.ws;
}

export class SimWorker {
  readonly socket: SimSocket;
  /** the id the coordinator gave this worker in each session (the same while it keeps its identity token) */
  readonly workerIds: string[] = [];
  /** the identity token from its last welcome, presented at every hello (undefined: ask for a new identity) */
  identity?: string;
  model?: ModelConfig;
  dataset?: TokenDataset;
  run?: RunInfo;
  version = -1;
  params?: Float32Array;
  /** refusals this worker was given, by code (acks and 'refused' events) */
  readonly codes: Record<string, number> = {};
  /** why its socket closed, each time */
  readonly disconnects: string[] = [];
  /** things worth reporting, in words (an attacker notes what it saw) */
  readonly notes: string[] = [];
  /** counts of things an attacker did or got away with, by what */
  readonly tallies: Record<string, number> = {};
  sessions = 0;
  leases = 0;
  /** train submissions accepted */
  accepted = 0;
  banned = false;
  done = false;
  private stopped = false;
  private ended?: string;
  private wake?: () => void;
  private loop?: Promise<void>;

  constructor(readonly o: SimOptions) {
    this.socket = openSocket(o.url);
    this.socket.on('version', () => this.wake?.());
    this.socket.on('run-ended', (m) => {
      if (m.runId === this.o.runId) this.done = true;
      this.wake?.();
    });
    this.socket.on('refused', (r) => this.count(r.code));
    this.socket.on('disconnect', (why) => {
      this.disconnects.push(why);
      this.ended = `disconnected (${why})`;
      this.wake?.();
    });
  }

  get workerId(): string | undefined {
    return this.workerIds.at(-1);
  }

  count(code: string): void {
    this.codes[code] = (this.codes[code] ?? 0) + 1;
  }

  tally(what: string, n = 1): void {
    this.tallies[what] = (this.tallies[what] ?? 0) + n;
  }

  note(line: string): void {
    if (!this.notes.includes(line)) this.notes.push(line);
  }

  /** starts the worker's loop (sessions one after another until the run ends, it is banned or stopped) */
  start(): this {
    this.loop = this.runLoop();
    return this;
  }

  /** resolves when the loop ends */
  finished(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private closers: (() => void)[] = [];

  /** f runs when the worker is closed (an attacker's extra sockets) */
  onClose(f: () => void): void {
    this.closers.push(f);
  }

  /** stop and close the socket (no reconnect) */
  async close(): Promise<void> {
    this.stop();
    for (const f of this.closers.splice(0)) f();
    this.socket.io.reconnection(false);
    this.socket.close();
    await this.loop?.catch(() => {});
  }

  /** dies as a killed process does: no more reconnects, the TCP connection destroyed without a close handshake */
  die(): void {
    this.stop();
    this.socket.io.reconnection(false);
    const ws = rawWs(this.socket);
    if (ws) ws.terminate();
    else this.socket.close();
  }

  get active(): boolean {
    return !this.stopped && !this.done && !this.banned;
  }

  private async runLoop(): Promise<void> {
    while (this.active) {
      try {
        await this.session();
      } catch (e) {
        if (!this.active) break;
        if (!(e instanceof SessionEnded)) this.note(`session failed: ${(e as Error).message}`);
        await this.rest(100);
      }
    }
  }

  /** sleep up to ms; a new version, the run's end, a disconnect or stop() wakes it */
  async rest(ms: number): Promise<void> {
    await new Promise<void>((ok) => {
      const t = setTimeout(ok, ms);
      this.wake = () => {
        clearTimeout(t);
        ok();
      };
    });
    this.wake = undefined;
  }

  /** an event with an ack; a refusal in the reply is counted; a break ends the session */
  async call<T>(event: string, payload: unknown): Promise<T> {
    if (this.ended || !this.socket.connected) throw new SessionEnded(this.ended ?? 'not connected');
    let r: T;
    try {
      r = await (this.socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<T> } }).timeout(this.o.ackTimeoutMs ?? 15_000).emitWithAck(event, payload);
    } catch (e) {
      throw new SessionEnded(`no answer to '${event}' (${(e as Error).message})`);
    }
    const x = r as { ok?: boolean; code?: string };
    if (x && x.ok === false && typeof x.code === 'string') this.count(x.code);
    return r;
  }

  private async session(): Promise<void> {
    this.ended = undefined;
    await connected(this.socket);
    this.ended = undefined;
    const w = await this.call<{ ok: boolean; workerId?: string; identity?: string; reason?: string }>('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: this.o.name, ...(this.identity ? { identity: this.identity } : {}) });
    if (!w.ok) throw new Error(`hello refused: ${w.reason}`);
    this.workerIds.push(w.workerId!);
    this.identity = w.identity;
    const j = await this.call<JoinReply>('join', { runId: this.o.runId });
    if (!j.ok) {
      if (j.code === 'run-not-running') this.done = true;
      else throw new Error(`join refused: ${j.code}: ${j.reason}`);
      return;
    }
    this.run = j.run;
    this.model = j.run.config.model;
    this.dataset = await this.tokens(j.run);
    this.version = -1; // fetched for the first lease
    this.sessions++;
    await this.o.onSession?.(this);
    while (this.active) {
      if (this.ended) throw new SessionEnded(this.ended);
      const r = await this.call<LeaseReply>('lease', { runId: this.o.runId, version: Math.max(0, this.version) });
      if (!r.ok) {
        if (r.code === 'banned') this.banned = true;
        else if (r.code === 'run-not-running') this.done = true;
        else if (r.code === 'rate-limited') await this.rest(200);
        else throw new Error(`lease refused: ${r.code}: ${r.reason}`);
        continue;
      }
      if ('wait' in r) {
        await this.rest(r.wait);
        continue;
      }
      this.leases++;
      await (this.o.onLease ?? honestly)(this, r.lease);
    }
  }

  private tokens(run: RunInfo): Promise<TokenDataset> {
    let d = datasets.get(run.tokens.sha256);
    if (!d) {
      d = (async () => {
        const res = await fetch(new URL(run.tokens.url, this.o.url));
        if (!res.ok) throw new Error(`token file: HTTP ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        const tokens = run.tokens.dtype === 'u8' ? Uint16Array.from(bytes) : new Uint16Array(bytes.buffer, 0, run.tokens.length);
        return new TokenDataset(tokens, run.vocab.length);
      })();
      d.catch(() => datasets.delete(run.tokens.sha256));
      datasets.set(run.tokens.sha256, d);
    }
    return d;
  }

  /**
   * the weights of version v, downloaded; false if the run moved past v (then, as the real loop, it takes the version
   * the run is at, so its next lease request says it holds current weights)
   */
  async sync(v: number, passed = false): Promise<boolean> {
    if (this.version === v) return true;
    const res = await fetch(new URL(weightsPath(this.o.runId, this.run!.epoch, v), this.o.url));
    const body = await res.arrayBuffer();
    if (res.status === 404) {
      const now = passed ? undefined : goneVersion(body);
      if (now !== undefined && now > v && now > this.version) await this.sync(now, true);
      return false;
    }
    if (res.status !== 200) throw new Error(`weights v${v}: HTTP ${res.status}`);
    this.version = v;
    this.params = new Float32Array(body);
    return true;
  }

  /**
   * the honest answer to a lease on the weights this worker holds: a train lease's gradient summed over its batches
   * (each batch's gradient of its own mean loss) and the mean loss; an eval lease's loss per batch. `targets` may
   * replace a batch's targets (an attacker training on wrong labels).
   */
  compute(lease: Lease, targets?: (t: Int32Array, batch: number) => Int32Array): Submission {
    const m = this.model!;
    const ds = this.dataset!;
    const p = this.params!;
    const { B, T } = lease;
    const base = { runId: lease.runId, leaseId: lease.leaseId, version: lease.version };
    if (lease.kind === 'eval') {
      const losses = lease.batches.map((j) => {
        const b = ds.evalBatch(j, lease.evalBatches, B, T);
        return modelLoss(m, p, tensor([B, T], b.idx), tensor([B, T], b.targets));
      });
      return { ...base, losses };
    }
    const sum = new Float64Array(p.length);
    let loss = 0;
    for (const i of lease.batches) {
      const b = ds.batch('train', lease.seed, i, B, T);
      const r = modelLossAndGrads(m, p, tensor([B, T], b.idx), tensor([B, T], targets ? targets(b.targets, i) : b.targets));
      loss += r.loss;
      for (let k = 0; k < sum.length; k++) sum[k] += r.grads[k];
    }
    return { ...base, loss: loss / lease.batches.length, grads: Float32Array.from(sum) as Float32Array<ArrayBuffer>, computeMs: 1 };
  }

  /** submits; counts an accepted train answer */
  async submit(sub: Submission): Promise<SubmitReply> {
    const r = await this.call<SubmitReply>('submit', sub);
    if (r.ok && sub.grads) this.accepted++;
    return r;
  }
}

/** the honest worker: the weights the lease names, the real gradient, submitted once */
export async function honestly(w: SimWorker, lease: Lease): Promise<void> {
  if (!(await w.sync(lease.version))) return;
  const sub = w.compute(lease);
  if (w.o.computeMs) await sleep(w.o.computeMs);
  await w.submit(sub);
}

/** ‖a‖₂ */
export function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}
