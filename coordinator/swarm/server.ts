// The coordinator: one HTTP server for the volunteer page (the vite build), the runs' token files (content
// addressed, cacheable for ever), the JSON status API and socket.io (msgpack frames, shared/codec.ts). Runs are
// SwarmRun objects (./run.ts); this file wires sockets to them and checks every inbound payload against
// shared/protocol.ts's schemas before anything touches a run. A bad message gets a refusal with the reason and
// is logged once per worker and code; nothing a worker sends can throw out of a handler.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { Server, type Namespace, type Socket } from 'socket.io';
import { CHUNK_BYTES, createParser, MAX_SKELETON, type ParserLimits } from '../../shared/codec.ts';
import { TokenDataset } from '../../shared/data/dataset.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import {
  INBOUND,
  PROTOCOL_VERSION,
  refuse,
  schemaProblems,
  type ClientToServerEvents,
  type Hello,
  type Refusal,
  type RunInfo,
  type RunStatus,
  type ServerToClientEvents,
  type TokenFile,
  type WeightsGone,
} from '../../shared/protocol.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { GRADSWARM_VERSION } from '../../shared/models/checkpoint.ts';
import { encodeCheckpoint } from '../../shared/models/checkpoint.ts';
import { parseRunConfig } from '../../shared/train/run-config.ts';
import { latestCheckpoint, listCheckpoints, readCheckpoint, writeCheckpoint } from '../checkpoint.ts';
import { bearer, loadOrCreateToken, tokenMatches, type AdminToken } from './auth.ts';
import { BufferPool } from './buffer-pool.ts';
import { Identities } from './identity.ts';
import { IngestGate, type EngineConn } from './ingest-gate.ts';
import { appendMetric, loadMetrics, loadRunRecords, loadRunState, runDir, saveRunRecord, saveRunState, type RunRecord } from './registry.ts';
import { loadCorpus } from '../data/corpus.ts';
import { SwarmRun, type WorkerInfo } from './run.ts';
import { YoungGc } from './young-gc.ts';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface CoordinatorOptions {
  port?: number;
  host?: string;
  /** checkpoints and run state go under here (runs/<id>/) */
  dataDir: string;
  /** the volunteer page's built files (index.html at the root); without it / serves a note */
  staticDir?: string;
  log?: Logger;
  /** the admin token; default: GRADSWARM_TOKEN or <dataDir>/admin-token (made at the first start) */
  token?: string;
  /**
   * bytes of gradients that may arrive at once (./ingest-gate.ts; default 64 MiB, at least one gradient): bounds the
   * coordinator's memory when many workers submit together, at the price of uploads taking turns
   */
  ingestBudgetBytes?: number;
  /**
   * per-connection message rate: a token bucket of `burst` messages refilled at `perSecond`; a message over it is
   * refused ('rate-limited'), and a connection that keeps flooding (`disconnectAfter` refusals in a row) is closed.
   * Default 500/s, burst 1000, 5000: above an honest worker on a fast GPU (two or three messages per lease; a
   * small model on an H200 takes ~130 steps/s).
   */
  rateLimit?: { perSecond: number; burst: number; disconnectAfter: number };
}

interface TokenBlob {
  file: TokenFile;
  bytes: Uint8Array;
}

interface WorkerState {
  info?: WorkerInfo;
  /** the identity token of info.workerId, given back in every welcome */
  token?: string;
  hello?: Hello;
  runId?: string;
  /** refusal codes already logged for this worker (log once, not per message) */
  logged: Set<string>;
}

type GsSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

/** one run in GET /api/runs (and the head of GET /api/runs/:id): what the console and `gradswarm run` read */
export interface RunSummary {
  id: string;
  name: string;
  status: RunStatus;
  model: string;
  params: number;
  step: number;
  maxSteps: number;
  /** train rows applied so far */
  samples: number;
  loss: number | null;
  valLoss: number | null;
  tokensPerSec: number;
  /** connected workers */
  workers: number;
  /** the run's share of volunteers */
  weight: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * a run's weights as served at GET weightsPath(run, epoch, version): the run's own array of that version, no copy. The
 * run writes a step into that array in place only once its downloads are over, else into another (SwarmRun inUse).
 */
interface WeightsFile {
  epoch: string;
  version: number;
  body: Buffer;
}

const quietLog: Logger = { info: () => {}, warn: () => {} };

/**
 * the network a connection comes from, as runs remember it for probation (./run.ts): an IPv4 address, or an IPv6
 * address's /64 (one household or host usually holds a whole /64)
 */
export function networkOf(address: string): string {
  const a = address.replace(/^::ffff:/i, '');
  if (!a.includes(':')) return a;
  const [head, tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

export class Coordinator {
  readonly runs = new Map<string, SwarmRun>();
  readonly ingest: IngestGate;
  readonly http: HttpServer;
  readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  private readonly blobs = new Map<string, TokenBlob>();
  private readonly runBlob = new Map<string, TokenBlob>();
  private readonly workers = new Map<string, WorkerState>();
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private readonly records = new Map<string, RunRecord>();
  /** gradients' buffers, recycled once a run has taken what it keeps */
  readonly gradientBuffers = new BufferPool(
    () => [...this.runs.values()].map((r) => r.layout.size * 4),
    () => this.ingest.slots + 1,
  );
  /** scavenges that free the socket reads' garbage young (./young-gc.ts) */
  readonly youngGc = new YoungGc();
  /** the largest packet a worker may announce: its largest run's gradient (raised as runs are added) */
  private readonly parserLimits: ParserLimits = { maxPacketBytes: 1 << 20, allocate: (n) => this.gradientBuffers.take(n), copied: (n) => this.youngGc.read(n) };
  /** weights downloads in flight, by the params array's buffer they send */
  private readonly downloads = new Map<ArrayBufferLike, number>();
  /** what GET weights/… serves, per run */
  private readonly weightFiles = new Map<string, WeightsFile>();
  /** worker id → its engine connection (the ingest gate knows whether an answer is arriving on it) */
  private readonly conns = new Map<string, EngineConn>();
  /** each connection's rate-limit bucket */
  private readonly buckets = new WeakMap<object, { tokens: number; filled: number; floods: number }>();
  readonly admin: AdminToken;
  /** signs and checks volunteers' identity tokens (./identity.ts) */
  readonly identities: Identities;
  /** identity → the socket using it now: one live connection per identity */
  private readonly liveIds = new Map<string, string>();
  url = '';

  constructor(private readonly o: CoordinatorOptions) {
    this.log = o.log ?? quietLog;
    this.admin = o.token !== undefined ? { token: o.token, source: 'env' } : loadOrCreateToken(o.dataDir);
    this.identities = Identities.load(o.dataDir);
    this.http = createServer((req, res) => {
      this.route(req, res).catch((e: Error) => {
        const status = e instanceof HttpError ? e.status : 500;
        if (status === 500) this.log.warn(`http ${req.method} ${req.url}: ${e.stack ?? e.message}`);
        if (!res.headersSent) this.json(res, status, { error: e.message });
        else res.end();
      });
    });
    this.io = new Server<ClientToServerEvents, ServerToClientEvents>(this.http, {
      parser: createParser(this.parserLimits),
      // every message is at most a frame of a small packet or one chunk of a large one (shared/codec.ts): a 9-byte
      // head announces a gradient, and its bytes follow in CHUNK_BYTES pieces
      maxHttpBufferSize: CHUNK_BYTES + MAX_SKELETON + (64 << 10),
      serveClient: false,
      cors: { origin: true },
      // a volunteer that drops and comes back within 2 minutes keeps its socket id and rooms
      connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
    });
    this.io.on('connection', (s) => this.onConnection(s));
    this.ingest = new IngestGate({ budgetBytes: o.ingestBudgetBytes ?? 64 << 20 });
    this.io.engine.on('connection', (conn: Parameters<IngestGate['watch']>[0]) => this.ingest.watch(conn));
    // the console's live feed: only with the admin token
    const admin = this.adminNs();
    admin.use((socket, next) => (tokenMatches((socket.handshake.auth as { token?: unknown })?.token, this.admin.token) ? next() : next(new Error('unauthorized: the admin token is missing or wrong'))));
    admin.on('connection', (socket) => {
      socket.emit('runs', this.summaries());
      // the admin namespace only listens: anything sent to it is refused, not acted on
      socket.onAny((event: string, ...args: unknown[]) => {
        const ack = args.at(-1);
        if (typeof ack === 'function') ack(refuse('bad-message', `the admin feed takes no events ('${String(event).slice(0, 50)}'); use the HTTP API`));
      });
    });
  }

  private summaries() {
    return [...this.runs.values()].map((r) => this.runSummary(r));
  }

  /** the /admin namespace, untyped: its events are the console's (docs/swarm.md), not the workers' */
  private adminNs(): Namespace {
    return this.io.of('/admin') as unknown as Namespace;
  }

  private adminEmit(event: string, payload: unknown): void {
    this.adminNs().emit(event, payload);
  }

  /** bring back every run saved under dataDir (after a restart or a crash), each from its newest checkpoint */
  async restore(): Promise<SwarmRun[]> {
    const out: SwarmRun[] = [];
    for (const rec of loadRunRecords(this.o.dataDir, (m) => this.log.warn(m))) {
      if (this.runs.has(rec.id)) continue;
      try {
        out.push(await this.addRun(rec.config, { id: rec.id, name: rec.name, record: rec }));
      } catch (e) {
        this.log.warn(`run ${rec.id}: cannot restore (${(e as Error).message})`);
      }
    }
    return out;
  }

  async listen(): Promise<string> {
    const { port = 8080, host = '0.0.0.0' } = this.o;
    await new Promise<void>((ok, fail) => {
      this.http.once('error', fail);
      this.http.listen(port, host, () => {
        this.http.off('error', fail);
        ok();
      });
    });
    const a = this.http.address() as AddressInfo;
    this.url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${a.port}/`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const r of this.runs.values()) {
      r.dispose();
      await r.flushCheckpoints();
      this.saveState(r);
    }
    this.ingest.close();
    this.io.disconnectSockets(true);
    await new Promise<void>((ok) => this.io.close(() => ok()));
    this.http.closeAllConnections?.();
  }

  // ---- runs ------------------------------------------------------------------------------------------------

  /**
   * Adds a run (id given or made up) and starts handing out its leases. Resumes from the newest checkpoint in
   * dataDir/runs/<id> when there is one.
   */
  async addRun(config: RunConfig, opts: { id?: string; name?: string; record?: RunRecord } = {}): Promise<SwarmRun> {
    const id = opts.id ?? `run-${randomBytes(3).toString('hex')}`;
    if (this.runs.has(id)) throw new Error(`a run named ${id} exists already`);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error(`run id '${id}': use letters, digits, _ . - (at most 64)`);
    const corpus = loadCorpus(config.data.corpus);
    const tokenizer = CharTokenizer.fromText(corpus.text);
    const blob = this.tokenBlob(corpus.sha256, tokenizer, corpus.text);
    const tokens = blob.file.dtype === 'u8' ? Uint16Array.from(blob.bytes) : new Uint16Array(blob.bytes.buffer, blob.bytes.byteOffset, blob.file.length);
    const dataset = new TokenDataset(tokens, tokenizer.size);
    const dir = join(this.o.dataDir, 'runs', id);
    let resume;
    const latest = await latestCheckpoint(dir);
    if (latest) {
      const ck = await readCheckpoint(latest);
      if (ck.optimizer) {
        resume = { params: ck.checkpoint.params, optimizer: ck.optimizer };
        this.log.info(`run ${id}: resuming from ${latest} (step ${ck.checkpoint.step})`);
      }
    }
    const run = new SwarmRun(id, opts.name ?? id, config, tokenizer, dataset, {
      resume,
      inUse: (p) => (this.downloads.get(p.buffer) ?? 0) > 0,
      answering: (workerId) => {
        const conn = this.conns.get(workerId);
        return conn !== undefined && this.ingest.uploading(conn);
      },
      saveCheckpoint: (step, params, state) =>
        writeCheckpoint(dir, { config: config.model, params, tokenizer, step, optimizer: run.optimizerSettings() }, state, { keep: config.train.keep_checkpoints }),
    });
    // the volunteers' records and the norm screen, as they were (a restart, or a run id used before in this data dir)
    const saved = loadRunState(this.o.dataDir, id, (m) => this.log.warn(m));
    if (saved) run.restoreState(saved);
    this.runs.set(id, run);
    this.runBlob.set(id, blob);
    const record: RunRecord = opts.record ?? { id, name: run.name, createdAt: new Date().toISOString(), status: run.status, config };
    this.records.set(id, record);
    if (opts.record) {
      // the curves up to the checkpoint resumed from; the metrics file is cut back to match
      const rows = loadMetrics(this.o.dataDir, id, run.version);
      run.restoreHistory(rows);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
      if (record.status === 'paused' || record.status === 'stopped') run.setStatus(record.status, 'as it was before the restart');
    }
    const persist = () => {
      record.status = run.status;
      saveRunRecord(this.o.dataDir, record);
    };
    persist();
    run.on('step', (r) => appendMetric(this.o.dataDir, id, r));
    run.on('eval', (e) => appendMetric(this.o.dataDir, id, { step: e.step, valLoss: e.valLoss, t: (performance.now() - run.startedAt) / 1000 }));
    run.on('step', (record) => this.adminEmit('step', { runId: id, record }));
    run.on('eval', (e) => this.adminEmit('eval', { runId: id, ...e }));
    run.on('status', (status, reason) => {
      persist();
      this.adminEmit('status', { runId: id, status, reason });
      this.adminEmit('runs', this.summaries());
    });
    this.adminEmit('runs', this.summaries());
    const bytes = run.layout.size * 4;
    // the largest packet is a gradient (a submit's other fields travel in its head)
    this.parserLimits.maxPacketBytes = Math.max(this.parserLimits.maxPacketBytes, bytes);
    this.ingest.frameBytes = Math.max(this.ingest.frameBytes, bytes);
    const bodyOf = (p: Float32Array) => Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    const weights: WeightsFile = { epoch: randomBytes(4).toString('hex'), version: run.version, body: bodyOf(run.params) };
    this.weightFiles.set(id, weights);
    run.on('weights', (version, params) => {
      weights.version = version;
      weights.body = bodyOf(params);
      this.io.to(id).emit('version', { runId: id, version });
    });
    run.on('progress', (p) => this.io.to(id).emit('progress', p));
    run.on('status', (status, why) => {
      this.log.info(`run ${id}: ${status} (${why})`);
      if (status === 'done' || status === 'stopped') this.io.to(id).emit('run-ended', { runId: id, status, reason: why });
    });
    run.on('step', (r) => {
      if (r.step === 1 || r.step % 10 === 0 || r.step === run.maxSteps) {
        this.log.info(`run ${id}: step ${r.step}/${run.maxSteps} loss ${r.loss.toFixed(4)} ${Math.round(r.tokensPerSec)} tok/s, ${run.connectedWorkers} worker(s)`);
      }
    });
    run.on('eval', (e) => this.log.info(`run ${id}: step ${e.step} val loss ${e.valLoss.toFixed(4)}`));
    run.on('checkpoint', (where, step) => {
      this.log.info(`run ${id}: checkpoint step ${step}: ${where}`);
      this.saveState(run);
    });
    run.on('ban', (workerId, why) => {
      this.log.info(`run ${id}: worker ${workerId} banned: ${why}`);
      this.saveState(run);
    });
    run.on('error', (e) => this.log.warn(`run ${id}: ${e.message}`));
    this.log.info(`run ${id}: ${config.model.model} with ${run.layout.size} parameters, target batch ${config.swarm.target_batch_size}, ${run.maxSteps} steps (at step ${run.version})`);
    return run;
  }

  /** write the run's state.json (./registry.ts); a failure is logged, not fatal */
  private saveState(run: SwarmRun): void {
    try {
      saveRunState(this.o.dataDir, run.id, run.exportState());
    } catch (e) {
      this.log.warn(`run ${run.id}: cannot save its state (${(e as Error).message})`);
    }
  }

  private tokenBlob(sha: string, tokenizer: CharTokenizer, text: string): TokenBlob {
    const key = `${sha}`;
    let b = this.blobs.get(key);
    if (!b) {
      const ids = tokenizer.encode(text);
      const dtype = tokenizer.size <= 256 ? 'u8' : 'u16';
      const arr = dtype === 'u8' ? Uint8Array.from(ids) : Uint16Array.from(ids);
      const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
      const hash = createHash('sha256').update(bytes).digest('hex');
      b = { file: { url: `data/${hash}.bin`, sha256: hash, bytes: bytes.byteLength, dtype, length: ids.length }, bytes };
      this.blobs.set(key, b);
    }
    return b;
  }

  runInfo(run: SwarmRun): RunInfo {
    return { runId: run.id, name: run.name, config: run.config, vocab: [...run.tokenizer.vocab], tokens: this.runBlob.get(run.id)!.file, paramCount: run.layout.size, epoch: this.weightFiles.get(run.id)!.epoch };
  }

  /** a running run by weight (the volunteers' share the researcher set), or undefined */
  private pickRun(): SwarmRun | undefined {
    // running runs first; a paused one still takes volunteers (they wait in it) when nothing else runs
    let live = [...this.runs.values()].filter((r) => r.status === 'running');
    if (!live.length) live = [...this.runs.values()].filter((r) => r.status === 'paused');
    if (!live.length) return undefined;
    // give the next volunteer to the run furthest below its weighted share
    const total = live.reduce((a, r) => a + r.config.swarm.weight, 0);
    const workers = live.reduce((a, r) => a + r.connectedWorkers, 0) + 1;
    return live.reduce((best, r) => {
      const deficit = (r.config.swarm.weight / total) * workers - r.connectedWorkers;
      const bd = (best.config.swarm.weight / total) * workers - best.connectedWorkers;
      return deficit > bd ? r : best;
    });
  }

  // ---- sockets ---------------------------------------------------------------------------------------------

  private onConnection(socket: GsSocket): void {
    const st: WorkerState = this.workers.get(socket.id) ?? { logged: new Set() };
    this.workers.set(socket.id, st);
    const refused = (r: Refusal): Refusal => {
      const key = r.code;
      if (!st.logged.has(key)) {
        st.logged.add(key);
        this.log.warn(`worker ${st.info?.workerId ?? socket.id} (${socket.handshake.address}): refused ${r.code}: ${r.reason} (logged once per worker and reason)`);
      }
      return r;
    };
    socket.on('error', (e) => refused(refuse('bad-message', e.message)));
    const limit = this.o.rateLimit ?? { perSecond: 500, burst: 1000, disconnectAfter: 5000 };
    // the bucket belongs to the connection (the websocket), not to the namespace socket: leaving and re-entering
    // the namespace on the same connection does not refill it
    let bucket = this.buckets.get(socket.conn);
    if (!bucket) this.buckets.set(socket.conn, (bucket = { tokens: limit.burst, filled: performance.now(), floods: 0 }));
    const b = bucket;
    // every inbound event: within the rate, known name, schema-valid payload, an ack function where the protocol has one
    socket.use((packet, next) => {
      // [event, ...args, ack?]: socket.io puts the ack last, whatever the number of arguments before it
      const event = packet[0] as unknown;
      const last = packet.at(-1) as unknown;
      const ack = packet.length > 1 && typeof last === 'function' ? last : undefined;
      const args = packet.slice(1, ack ? -1 : undefined);
      const payload = args[0];
      const reply = (r: Refusal) => (ack ? (ack as (r: Refusal) => void)(r) : socket.emit('refused', r));
      const t = performance.now();
      b.tokens = Math.min(limit.burst, b.tokens + ((t - b.filled) / 1000) * limit.perSecond);
      b.filled = t;
      if (b.tokens < 1) {
        if (++b.floods >= limit.disconnectAfter) {
          refused(refuse('rate-limited', `${b.floods} messages over the rate in a row: disconnected`));
          socket.disconnect(true);
          return;
        }
        return reply(refused(refuse('rate-limited', `over ${limit.perSecond} messages/s (burst ${limit.burst}): slow down`)));
      }
      b.tokens -= 1;
      b.floods = 0;
      const schema = typeof event === 'string' && Object.hasOwn(INBOUND, event) ? (INBOUND as Record<string, (typeof INBOUND)[keyof typeof INBOUND]>)[event] : undefined;
      if (!schema) return reply(refused(refuse('bad-message', `unknown event '${String(event).slice(0, 50)}'`)));
      if (!ack) return reply(refused(refuse('bad-message', `'${event}' needs an acknowledgement callback`)));
      if (args.length !== 1) return reply(refused(refuse('bad-message', `'${event}' takes one payload and an acknowledgement, got ${args.length} argument(s) before it`)));
      const r = schema.safeParse(payload);
      if (!r.success) {
        const why = `${event}: ${schemaProblems(r.error)}`;
        // an answer to a lease the sender holds, refused here: the lease goes back now (not at its timeout) and the
        // sender gets a strike, so answering with garbage cannot stall a step
        const p = payload as { runId?: unknown; leaseId?: unknown } | null;
        if (event === 'submit' && st.info && typeof p?.runId === 'string' && typeof p.leaseId === 'string') {
          this.runs.get(p.runId)?.rejectAnswer(st.info.workerId, p.leaseId, `bad-message: ${why}`);
        }
        return reply(refused(refuse('bad-message', why)));
      }
      packet[1] = r.data;
      next();
    });
    const guard = <A extends unknown[]>(event: string, fn: (...a: A) => void) => (...a: A) => {
      try {
        fn(...a);
      } catch (e) {
        this.log.warn(`worker ${st.info?.workerId ?? socket.id}: ${event} failed: ${(e as Error).stack ?? e}`);
        const ack = a.at(-1);
        if (typeof ack === 'function') ack(refuse('bad-message', `${event}: ${(e as Error).message}`));
      }
    };

    socket.on(
      'hello',
      guard('hello', (m, ack) => {
        if (m.protocol !== PROTOCOL_VERSION) return ack(refused(refuse('protocol', `this coordinator speaks protocol ${PROTOCOL_VERSION}, the worker ${m.protocol}: reload the page or update gradswarm`)));
        st.hello = m;
        let workerId = st.info?.workerId;
        let returning = false;
        if (!workerId || !st.token) {
          // the identity it presents, if the token is ours and no other live connection uses it (a second tab, a
          // copied token: one connection per identity); else a new one. A socket keeps its identity for its life.
          const claimed = this.identities.verify(m.identity);
          returning = claimed !== undefined && !this.liveIds.has(claimed);
          const id = returning ? { id: claimed!, token: m.identity! } : this.identities.issue();
          this.liveIds.set(id.id, socket.id);
          st.token = id.token;
          workerId = id.id;
        }
        st.info = { workerId, kind: m.kind, name: m.name, adapter: m.adapter, address: networkOf(socket.handshake.address) };
        this.conns.set(workerId, socket.conn as unknown as EngineConn);
        this.log.info(`worker ${workerId} connected${returning ? ' (returning)' : ''}: ${m.kind}${m.name ? ` '${m.name}'` : ''} on ${m.adapter ?? 'an unknown adapter'}${m.fallback ? ' (software)' : ''}`);
        ack({ ok: true, workerId, coordinator: GRADSWARM_VERSION, identity: st.token });
      }),
    );

    socket.on(
      'join',
      guard('join', (m, ack) => {
        if (!st.info) return ack(refused(refuse('not-joined', 'say hello first')));
        const run = m.runId ? this.runs.get(m.runId) : this.pickRun();
        if (m.runId && !run) return ack(refused(refuse('unknown-run', `no run '${m.runId}' (runs: ${[...this.runs.keys()].join(', ') || 'none'})`)));
        if (!run) return ack(refused(refuse('no-run', 'no run is training right now; the page will join when one starts')));
        if (run.status === 'done' || run.status === 'stopped') return ack(refused(refuse('run-not-running', `run ${run.id} is ${run.status}`)));
        if (st.runId && st.runId !== run.id) {
          this.runs.get(st.runId)?.leave(st.info.workerId);
          socket.leave(st.runId);
        }
        st.runId = run.id;
        socket.join(run.id);
        run.join(st.info);
        ack({ ok: true, run: this.runInfo(run), version: run.version });
      }),
    );

    socket.on(
      'lease',
      guard('lease', (m, ack) => {
        const run = this.runFor(st, m.runId);
        if (!('id' in run)) return ack(refused(run));
        ack(run.lease(st.info!.workerId, m.version));
      }),
    );

    socket.on(
      'submit',
      guard('submit', (m, ack) => {
        const run = this.runFor(st, m.runId);
        if (!('id' in run)) return ack(refused(run));
        const r = run.submit(st.info!.workerId, m);
        // the run copied whatever it keeps of the gradient: its buffer (assembled from chunks, exactly its size) is free
        const g = m.grads;
        if (g && g.length === run.layout.size && g.byteOffset === 0 && g.buffer.byteLength === g.byteLength) this.gradientBuffers.give(g.buffer as ArrayBuffer);
        ack(r.ok ? r : refused(r));
      }),
    );

    socket.on('disconnect', (reason) => {
      // a client that leaves the namespace (a DISCONNECT packet) with no other namespace on its connection has no use
      // for the connection: close it, as socket.io-client does on its side (else it could sit on an open connection
      // whose events go nowhere, or re-enter the namespace to start afresh)
      const client = socket.client as unknown as { nsps: Map<string, unknown> };
      if (reason === 'client namespace disconnect' && client.nsps.size === 0) socket.conn.close();
      // a recovered connection gets the same socket id back; leases are released now either way
      if (st.info && st.runId) this.runs.get(st.runId)?.leave(st.info.workerId);
      if (st.info) this.log.info(`worker ${st.info.workerId} disconnected`);
      if (st.info && this.liveIds.get(st.info.workerId) === socket.id) this.liveIds.delete(st.info.workerId);
      if (st.info && this.conns.get(st.info.workerId) === socket.conn) this.conns.delete(st.info.workerId);
      this.workers.delete(socket.id);
    });
  }

  private runFor(st: WorkerState, runId: string): SwarmRun | Refusal {
    if (!st.info) return refuse('not-joined', 'say hello first');
    const run = this.runs.get(runId);
    if (!run) return refuse('unknown-run', `no run '${runId}'`);
    if (st.runId !== runId) return refuse('not-joined', `join run ${runId} first`);
    return run;
  }

  // ---- http ------------------------------------------------------------------------------------------------

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  runSummary(r: SwarmRun): RunSummary {
    const last = r.history.at(-1);
    return {
      id: r.id,
      name: r.name,
      status: r.status,
      model: r.config.model.model,
      params: r.layout.size,
      step: r.version,
      maxSteps: r.maxSteps,
      samples: r.history.reduce((a, h) => a + h.samples, 0),
      loss: last?.loss ?? null,
      valLoss: r.valHistory.at(-1)?.valLoss ?? null,
      tokensPerSec: last?.tokensPerSec ?? 0,
      workers: r.connectedWorkers,
      weight: r.config.swarm.weight,
    };
  }

  async runDetail(r: SwarmRun) {
    return {
      ...this.runSummary(r),
      config: r.config,
      lastCheckpoint: r.lastCheckpoint ?? null,
      leasesOut: r.outstanding,
      history: r.history.map((h) => ({
        step: h.step,
        loss: h.loss,
        lr: h.lr,
        gradNorm: h.gradNorm,
        samples: h.samples,
        ms: h.ms,
        computeMs: h.computeMs ?? 0,
        aggregateMs: h.aggregateMs,
        tokensPerSec: h.tokensPerSec,
        t: h.t,
      })),
      valHistory: r.valHistory,
      workers: [...r.workers.values()],
      checkpoints: await listCheckpoints(runDir(this.o.dataDir, r.id)),
    };
  }

  /** what a volunteer's page may see of a run: its curve, nothing about other volunteers */
  publicRun(r: SwarmRun) {
    return {
      id: r.id,
      name: r.name,
      model: r.config.model.model,
      status: r.status,
      step: r.version,
      maxSteps: r.maxSteps,
      loss: r.history.at(-1)?.loss ?? null,
      workers: r.connectedWorkers,
      config: { model: r.config.model },
      history: r.history.map((h) => ({ step: h.step, loss: h.loss })),
      valHistory: r.valHistory.map((v) => ({ step: v.step, valLoss: v.valLoss })),
    };
  }

  /** a run config from JSON (as a file holds it): every problem by path, or the parsed config with defaults */
  validateConfig(json: unknown): { ok: true; config: RunConfig } | { ok: false; problems: string[] } {
    const corpusProblems: string[] = [];
    try {
      const config = parseRunConfig(json, {
        vocabSize: (d) => {
          try {
            return CharTokenizer.fromText(loadCorpus(d.corpus).text).size;
          } catch (e) {
            corpusProblems.push(`data.corpus: ${(e as Error).message}`);
            throw e;
          }
        },
      });
      return { ok: true, config };
    } catch (e) {
      const msg = (e as Error).message.replace(/^run config: /, '');
      return { ok: false, problems: msg.split('; ').filter(Boolean) };
    }
  }

  private async readJson(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
      chunks.push(c as Buffer);
    }
    if (!size) return {};
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      throw new HttpError(400, `body is not JSON (${(e as Error).message})`);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/api/health') {
      return this.json(res, 200, { ok: true, version: GRADSWARM_VERSION, uptimeS: Math.round((Date.now() - this.startedAt) / 1000), runs: this.runs.size, workers: this.io.engine.clientsCount });
    }
    const pub = /^\/api\/runs\/([^/]+)\/public$/.exec(path);
    if (pub && method === 'GET') {
      const r = this.runs.get(decodeURIComponent(pub[1]));
      return r ? this.json(res, 200, this.publicRun(r)) : this.json(res, 404, { error: `no run '${pub[1]}'` });
    }
    const d = /^\/data\/([0-9a-f]{64})\.bin$/.exec(path);
    if (d) {
      const b = [...this.blobs.values()].find((x) => x.file.sha256 === d[1]);
      if (!b) return this.json(res, 404, { error: 'no such token file' });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.bytes.byteLength, 'cache-control': 'public, max-age=31536000, immutable', etag: `"${b.file.sha256}"` });
      return void res.end(b.bytes);
    }
    const w = /^\/weights\/([^/]+)\/([0-9a-f]+)\/(\d+)\.bin$/.exec(path);
    if (w) {
      const runId = decodeURIComponent(w[1]);
      const f = this.weightFiles.get(runId);
      const gone = (body: WeightsGone) => this.json(res, 404, body);
      if (!f || f.epoch !== w[2]) return gone({ error: `run '${runId}' has no weights of epoch ${w[2]} here (the coordinator restarted, or no such run): join again` });
      if (Number(w[3]) !== f.version) return gone({ error: `version ${w[3]} of run '${runId}' is gone: the run is at version ${f.version}`, version: f.version });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.body.byteLength, 'cache-control': 'public, max-age=31536000, immutable' });
      if (method === 'HEAD') return void res.end();
      // the run does not write into this version's array while its downloads are going out (SwarmRun inUse)
      const buf = f.body.buffer;
      this.downloads.set(buf, (this.downloads.get(buf) ?? 0) + 1);
      // over once the body is with the kernel ('finish'), or its connection is gone: a pipelined response still queued
      // behind another when the client leaves gets no 'close' of its own
      const sock = req.socket;
      let over = false;
      const release = () => {
        if (over) return;
        over = true;
        sock.off('close', release);
        const left = this.downloads.get(buf)! - 1;
        if (left > 0) this.downloads.set(buf, left);
        else this.downloads.delete(buf);
      };
      res.once('finish', release);
      res.once('close', release);
      sock.once('close', release);
      return void res.end(f.body);
    }
    if (!path.startsWith('/api/')) return this.serveStatic(path, res);

    // everything else under /api/ is the researcher's
    if (!tokenMatches(bearer(req.headers.authorization), this.admin.token)) {
      res.setHeader('www-authenticate', 'Bearer realm="gradswarm"');
      return this.json(res, 401, { error: req.headers.authorization ? 'wrong admin token' : 'this route needs the admin token (Authorization: Bearer <token>)' });
    }
    if (path === '/api/runs' && method === 'GET') return this.json(res, 200, this.summaries());
    if (path === '/api/runs' && method === 'POST') {
      const body = (await this.readJson(req)) as { id?: unknown; name?: unknown; config?: unknown };
      if (body.id !== undefined && typeof body.id !== 'string') throw new HttpError(400, 'id must be a string');
      if (body.id && this.runs.has(body.id)) throw new HttpError(409, `a run named ${body.id} exists already`);
      const v = this.validateConfig(body.config);
      if (!v.ok) return this.json(res, 400, { error: `invalid run config: ${v.problems.length} problem(s)`, problems: v.problems });
      const run = await this.addRun(v.config, { id: body.id as string | undefined, name: typeof body.name === 'string' ? body.name : undefined });
      return this.json(res, 201, this.runSummary(run));
    }
    if (path === '/api/config/validate' && method === 'POST') {
      const body = (await this.readJson(req)) as { config?: unknown };
      return this.json(res, 200, this.validateConfig(body.config));
    }
    const m = /^\/api\/runs\/([^/]+)(?:\/(pause|resume|stop|export))?$/.exec(path);
    if (m) {
      const r = this.runs.get(decodeURIComponent(m[1]));
      if (!r) return this.json(res, 404, { error: `no run '${m[1]}' (runs: ${[...this.runs.keys()].join(', ') || 'none'})` });
      const action = m[2];
      if (!action && method === 'GET') return this.json(res, 200, await this.runDetail(r));
      if (!action && method === 'PATCH') {
        const body = (await this.readJson(req)) as { weight?: unknown };
        try {
          r.setWeight(Number(body.weight));
        } catch (e) {
          throw new HttpError(400, (e as Error).message);
        }
        saveRunRecord(this.o.dataDir, { ...this.records.get(r.id)!, status: r.status, config: r.config });
        this.adminEmit('runs', this.summaries());
        return this.json(res, 200, this.runSummary(r));
      }
      if (action === 'export' && method === 'GET') {
        const bytes = encodeCheckpoint({ config: r.config.model, params: Float32Array.from(r.params), tokenizer: r.tokenizer, step: r.version, optimizer: r.optimizerSettings() });
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': bytes.byteLength,
          'content-disposition': `attachment; filename="${r.id}-step${r.version}.safetensors"`,
          'cache-control': 'no-store',
        });
        return void res.end(bytes);
      }
      if (action && method === 'POST' && action !== 'export') {
        if (r.status === 'done' || r.status === 'stopped') return this.json(res, 409, { error: `run ${r.id} is ${r.status}`, id: r.id, status: r.status });
        const to = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'stopped';
        if (to === 'stopped') await r.checkpoint();
        r.setStatus(to, `${action} from the console`);
        return this.json(res, 200, { id: r.id, status: r.status });
      }
    }
    return this.json(res, 404, { error: `no API route ${method} ${path}` });
  }

  private serveStatic(path: string, res: ServerResponse): void {
    const dir = this.o.staticDir;
    if (!dir || !existsSync(join(dir, 'index.html'))) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('The volunteer page is not built. Start the coordinator with `npx gradswarm start`, which builds it.\n');
      return;
    }
    const root = resolve(dir);
    let file = normalize(join(root, decodeURIComponent(path)));
    if (!file.startsWith(root + sep) && file !== root) return void res.writeHead(403).end();
    // a folder serves its index.html; a path that names no file serves the nearest index.html above it (the page
    // routes itself): /console and /console/x → console/index.html, anything else → the volunteer page
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      let dir = dirname(file);
      while (dir.length > root.length && !existsSync(join(dir, 'index.html'))) dir = dirname(dir);
      file = join(dir.length > root.length ? dir : root, 'index.html');
    }
    const immutable = file.includes(`${sep}assets${sep}`);
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
    res.end(readFileSync(file));
  }
}
