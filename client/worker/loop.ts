// The worker loop, one for every kind of worker (the volunteer page and `gradswarm worker` on Node): say hello, join
// a run, fetch its tokens once, then lease → compute on the GPU → submit, for ever. A lease names the weights version
// to compute on; the loop GETs that version over HTTP (weightsPath) unless it has it, and a 'version' notice after
// every step wakes a worker that was told to wait. Any break (disconnect, the run ending, an ack that times out)
// starts the session over: hello, join, resync. Isomorphic: the socket and the GPU are given; HTTP is fetch().
import type { Socket } from 'socket.io-client';
import { TokenDataset } from '../../shared/data/dataset.ts';
import { isGpt } from '../../shared/models/config.ts';
import {
  goneVersion,
  PROTOCOL_VERSION,
  type ClientToServerEvents,
  type Hello,
  type Lease,
  type Progress,
  type RunInfo,
  type ServerToClientEvents,
  type Submission,
  weightsPath,
} from '../../shared/protocol.ts';
import { GptModel } from '../models/gpt.ts';
import { RecurrentModel } from '../models/recurrent.ts';
import type { Gpu } from '../runtime/gpu.ts';

export type WorkerSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type WorkerState = 'connecting' | 'joining' | 'loading' | 'working' | 'waiting' | 'paused' | 'idle' | 'stopped' | 'error';

export interface WorkerStatus {
  state: WorkerState;
  /** what is happening, in words, for a volunteer */
  message: string;
  workerId?: string;
  run?: { runId: string; name: string; model: string; params: number };
  version?: number;
  /** train rows this worker computed and had accepted */
  samples: number;
  /** distinct optimizer steps this worker contributed gradients to */
  steps: number;
  /** rows/s over the last leases */
  samplesPerSec: number;
  refused: number;
}

export interface WorkerOptions {
  gpu: Gpu;
  socket: WorkerSocket;
  hello: Omit<Hello, 'protocol'>;
  /** the coordinator's HTTP origin, for the token file and the weights (the page: location.origin) */
  coordinatorUrl: string | URL;
  onStatus?: (s: WorkerStatus) => void;
  onProgress?: (p: Progress) => void;
  /** log a line (debugging; the status carries what a volunteer needs) */
  log?: (line: string) => void;
  /** share of wall time to compute, (0, 1]: after a lease that took c ms the loop rests c·(1 − d)/d ms */
  duty?: () => number;
  /** true while the volunteer paused (or the tab is hidden and they chose to back off) */
  paused?: () => boolean;
  /** ms to wait for an ack before starting the session over (default 60 s) */
  ackTimeoutMs?: number;
  /**
   * where the volunteer's identity token is kept between sessions of this process and beyond (the page: localStorage;
   * the Node worker: a file): a coordinator keeps the volunteer's record (strikes, checks passed, a ban) under it
   */
  identity?: IdentityStore;
}

/** keeps the identity token a coordinator's welcome gave (coordinator/swarm/identity.ts) */
export interface IdentityStore {
  load(): string | undefined;
  save(token: string): void;
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

class SessionEnded extends Error {}

type Model = GptModel | RecurrentModel;

export class Worker {
  readonly status: WorkerStatus = { state: 'connecting', message: 'connecting to the coordinator', samples: 0, steps: 0, samplesPerSec: 0, refused: 0 };
  private stopped = false;
  private model?: Model;
  private modelKey = '';
  private dataset?: TokenDataset;
  private datasetKey = '';
  private version = -1;
  private ended?: string;
  private contributed = new Set<number>();
  private rate: number[] = [];
  private wake?: () => void;
  /** the run joined, and a download of the weights started on a 'version' notice */
  private joined?: RunInfo;
  private prefetch?: { version: number; reply: Promise<{ status: number; bytes: Uint8Array }> };
  /** the identity token, presented at every hello (kept in memory even where the store cannot keep it) */
  private identity?: string;

  constructor(private readonly o: WorkerOptions) {
    const s = o.socket;
    s.on('version', (m) => {
      if (this.joined?.runId !== m.runId || m.version <= this.version) return;
      // start the download now, while the next lease is asked for (syncWeights takes it up)
      if (this.prefetch?.version !== m.version) {
        const p = this.get(weightsPath(m.runId, this.joined.epoch, m.version));
        p.catch(() => {}); // syncWeights sees a failure when (if) it takes this up
        this.prefetch = { version: m.version, reply: p };
      }
      // a worker told to wait for the step to close asks again as soon as the new weights are here
      if (this.status.state === 'waiting') this.wake?.();
    });
    s.on('progress', (p) => o.onProgress?.(p));
    s.on('run-ended', (m) => {
      if (this.status.run?.runId === m.runId) this.ended = `run ${m.runId} ${m.status}: ${m.reason}`;
      this.wake?.();
    });
    s.on('refused', (r) => o.log?.(`refused: ${r.code}: ${r.reason}`));
    s.on('disconnect', (why) => {
      this.ended = `disconnected (${why})`;
      this.wake?.();
    });
  }

  private set(state: WorkerState, message: string): void {
    this.status.state = state;
    this.status.message = message;
    this.o.onStatus?.({ ...this.status });
  }

  /** wake the loop (after resume, or to stop) */
  poke(): void {
    this.wake?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async rest(ms: number): Promise<void> {
    await new Promise<void>((ok) => {
      const t = setTimeout(ok, ms);
      this.wake = () => {
        clearTimeout(t);
        ok();
      };
    });
    this.wake = undefined;
  }

  private async call<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]> {
    if (this.ended) throw new SessionEnded(this.ended);
    const s = this.o.socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<unknown> } };
    try {
      return (await s.timeout(this.o.ackTimeoutMs ?? 60_000).emitWithAck(event, payload)) as never;
    } catch (e) {
      throw new SessionEnded(`no answer to '${event}' (${(e as Error).message})`);
    }
  }

  /** runs until stop(): sessions (hello, join, work) one after another, resting after a failure */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.session();
        failures = 0;
      } catch (e) {
        if (this.stopped) break;
        const gpuLost = this.o.gpu.lost;
        if (gpuLost) {
          this.set('error', `${gpuLost}. Reload the page to start again.`);
          throw e;
        }
        failures++;
        const wait = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
        const why = e instanceof SessionEnded ? e.message : (e as Error).message;
        this.o.log?.(`session ended: ${why}; again in ${wait} ms`);
        this.set(this.status.state === 'idle' ? 'idle' : 'connecting', `${why}; trying again in ${Math.round(wait / 1000)} s`);
        await this.rest(wait);
      }
    }
    this.set('stopped', 'stopped');
    this.model?.release();
  }

  private async session(): Promise<void> {
    const s = this.o.socket;
    this.ended = undefined;
    if (!s.connected) {
      this.set('connecting', 'connecting to the coordinator');
      await new Promise<void>((ok, fail) => {
        const t = setTimeout(() => fail(new SessionEnded('could not reach the coordinator')), 20_000);
        s.once('connect', () => {
          clearTimeout(t);
          ok();
        });
        if (!s.active) s.connect();
      });
    }
    this.identity ??= this.o.identity?.load();
    const w = await this.call('hello', { protocol: PROTOCOL_VERSION, ...this.o.hello, ...(this.identity ? { identity: this.identity } : {}) });
    if (!w.ok) throw new Error(`the coordinator refused us: ${w.reason}`);
    this.status.workerId = w.workerId;
    if (w.identity && w.identity !== this.identity) {
      this.identity = w.identity;
      this.o.identity?.save(w.identity);
    }
    this.set('joining', 'joining a run');
    const j = await this.call('join', {});
    if (!j.ok) {
      if (j.code === 'no-run') {
        this.set('idle', j.reason);
        await this.rest(5000);
        return;
      }
      throw new Error(j.reason);
    }
    const run = j.run;
    this.status.run = { runId: run.runId, name: run.name, model: run.config.model.model, params: run.paramCount };
    this.set('loading', `loading ${run.name}: ${run.config.model.model}, ${(run.paramCount / 1e6).toFixed(2)} M parameters`);
    await this.prepare(run);
    this.version = -1; // fetched with the first lease: the version it names
    this.joined = run;
    this.prefetch = undefined;
    await this.work(run);
  }

  /** the tokens (fetched once per file) and the model (built once per config) */
  private async prepare(run: RunInfo): Promise<void> {
    if (this.datasetKey !== run.tokens.sha256) {
      const r = await this.get(run.tokens.url);
      if (r.status !== 200) throw new Error(`token file ${run.tokens.url}: HTTP ${r.status}`);
      const bytes = r.bytes;
      if (bytes.byteLength !== run.tokens.bytes) throw new Error(`token file ${run.tokens.url}: expected ${run.tokens.bytes} bytes, got ${bytes.byteLength}`);
      const aligned = new Uint8Array(bytes); // own, aligned copy
      const tokens = run.tokens.dtype === 'u8' ? Uint16Array.from(aligned) : new Uint16Array(aligned.buffer, 0, run.tokens.length);
      this.dataset = new TokenDataset(tokens, run.vocab.length);
      this.datasetKey = run.tokens.sha256;
    }
    const key = JSON.stringify(run.config.model);
    if (this.modelKey !== key) {
      this.model?.release();
      const mc = run.config.model;
      this.model = isGpt(mc) ? new GptModel(this.o.gpu, mc) : new RecurrentModel(this.o.gpu, mc);
      this.modelKey = key;
    }
  }

  /** GET a path of the coordinator: its status and body */
  private async get(path: string): Promise<{ status: number; bytes: Uint8Array }> {
    const once = async () => {
      const r = await fetch(new URL(path, this.o.coordinatorUrl));
      return { status: r.status, bytes: new Uint8Array(await r.arrayBuffer()) };
    };
    // a kept-alive connection the server closed while idle fails the request that reuses it: once more, not a new session
    return once().catch(once);
  }

  private async work(run: RunInfo): Promise<void> {
    const runId = run.runId;
    for (;;) {
      if (this.stopped) return;
      if (this.ended) throw new SessionEnded(this.ended);
      if (this.o.paused?.()) {
        this.set('paused', 'paused');
        await this.rest(1000);
        continue;
      }
      const r = await this.call('lease', { runId, version: Math.max(0, this.version) });
      if (!r.ok) throw new Error(r.reason);
      if ('wait' in r) {
        this.set('waiting', r.why);
        await this.rest(r.wait);
        continue;
      }
      const lease = r.lease;
      await this.syncWeights(run, lease.version);
      if (this.version !== lease.version) continue; // the run moved on before we fetched: the lease will expire
      this.set('working', `computing ${lease.kind === 'train' ? 'gradients' : 'validation loss'} for step ${lease.version + 1}`);
      const t0 = performance.now();
      const sub = await this.compute(lease);
      const ms = performance.now() - t0;
      sub.computeMs = ms;
      const reply = await this.call('submit', sub);
      if (reply.ok) {
        if (lease.kind === 'train') {
          this.status.samples += lease.batches.length * lease.B;
          this.contributed.add(lease.version);
          this.status.steps = this.contributed.size;
          this.rate.push((lease.batches.length * lease.B * 1000) / ms);
          if (this.rate.length > 10) this.rate.shift();
          this.status.samplesPerSec = this.rate.reduce((a, b) => a + b, 0) / this.rate.length;
        }
      } else {
        this.status.refused++;
        this.o.log?.(`submission refused: ${reply.code}: ${reply.reason}`);
      }
      this.o.onStatus?.({ ...this.status });
      const d = Math.min(1, Math.max(0.05, this.o.duty?.() ?? 1));
      if (d < 1) await this.rest((ms * (1 - d)) / d);
    }
  }

  /** make the model's weights version `v` (unless the coordinator has moved past it: then the lease is lost anyway) */
  private async syncWeights(run: RunInfo, v: number, passed = false): Promise<void> {
    if (this.version === v) return;
    const path = weightsPath(run.runId, run.epoch, v);
    const r = await (this.prefetch?.version === v ? this.prefetch.reply : this.get(path));
    this.prefetch = undefined;
    if (r.status === 404 && this.ended === undefined) {
      // gone: the run is past v (the lease is lost). Take the version it is at now, so the next lease request says
      // this worker holds current weights (the run tells a straggler from a hoarder by that) and starts at once
      const now = passed ? undefined : goneVersion(r.bytes);
      if (now !== undefined && now > v && now > this.version) await this.syncWeights(run, now, true);
      return;
    }
    if (r.status !== 200) throw new Error(`weights ${path}: HTTP ${r.status}`);
    if (r.bytes.byteLength !== run.paramCount * 4) throw new Error(`weights ${path}: ${r.bytes.byteLength} bytes, expected ${run.paramCount * 4}`);
    // fetch's body is its own ArrayBuffer from offset 0: aligned for the view (little-endian, as every WebGPU host)
    this.model!.setParams(new Float32Array(r.bytes.buffer, r.bytes.byteOffset, run.paramCount));
    this.version = v;
    this.status.version = v;
  }

  private async compute(lease: Lease): Promise<Submission> {
    const m = this.model!;
    const ds = this.dataset!;
    const { B, T } = lease;
    const base = { runId: lease.runId, leaseId: lease.leaseId, version: lease.version };
    if (lease.kind === 'eval') {
      const losses: number[] = [];
      for (const j of lease.batches) {
        const b = ds.evalBatch(j, lease.evalBatches, B, T);
        losses.push(await m.loss(b.idx, b.targets, B, T));
      }
      return { ...base, losses };
    }
    let grads: Float32Array | undefined;
    let loss = 0;
    for (const i of lease.batches) {
      const b = ds.batch('train', lease.seed, i, B, T);
      const r = await m.lossAndGrads(b.idx, b.targets, B, T);
      loss += r.loss;
      if (!grads) grads = r.grads;
      else for (let k = 0; k < grads.length; k++) grads[k] += r.grads[k];
    }
    return { ...base, loss: loss / lease.batches.length, grads: grads as Float32Array<ArrayBuffer> };
  }
}
