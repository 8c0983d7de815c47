// A simulated swarm worker for the coordinator benchmark (bench/swarm.ts) and its test: a real socket.io-client
// with the msgpack parser (shared/codec.ts) speaking shared/protocol.ts by hand (hello, join, lease, submit), with a
// given gradient instead of a GPU. Like the real loop it downloads the weights of each version it computes on over
// HTTP (GET weightsPath, started when the 'version' notice arrives), so the coordinator serves them as it would for
// real workers; it keeps only their byte count.
//
// One difference from client/worker/loop.ts, on purpose: told to wait (the step's leases are all out), the real
// loop sleeps the coordinator's hint (100 ms + 50 ms per lease out, up to 2.1 s); the simulated worker leases again
// as soon as the next weights arrive (or the hint runs out), so the benchmark measures the coordinator, not the
// polling interval.
//
// The simulated workers share the machine's cores with the coordinator they measure, so they spend as little CPU as
// the protocol lets them: their websocket frames carry a zero mask (RFC 6455 masks every client frame; a zero mask
// leaves the bytes as they are, so ws skips the XOR here, while the coordinator unmasks them as it would a browser's),
// and they download weights with a minimal HTTP/1.1 GET that reads into one reused buffer (node:http hands every
// 64 KiB read to the parser as a new Buffer, whose garbage cost the workers a tenth of their CPU).
import { transports } from 'engine.io-client';
import { connect, type Socket as NetSocket } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import { parser } from '../shared/codec.ts';
import { PROTOCOL_VERSION, weightsPath, type ClientToServerEvents, type Lease, type ServerToClientEvents } from '../shared/protocol.ts';

export type SimSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

type Reply<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

export interface SimStats {
  /** train leases whose gradient the coordinator accepted */
  accepted: number;
  /** eval leases answered */
  evals: number;
  /** lease requests answered with "wait" */
  waits: number;
  /** gradient bytes submitted (the Float32Array's, without framing) */
  gradBytes: number;
  /** answers refused as duplicate, expired or stale (another copy of the lease answered first, or the step closed) */
  lost: number;
  /** weights bytes downloaded, and ms from each 'version' notice to its weights downloaded */
  weightBytes: number;
  fetchMs: number[];
}

/** engine.io's Node websocket transport, with frames masked by zeros (what ws then does not XOR) */
class ZeroMaskWebSocket extends transports.websocket {
  override createSocket(uri: string, protocols: string | string[] | undefined, opts: Record<string, unknown>) {
    return super.createSocket(uri, protocols, { ...opts, generateMask: (mask: Uint8Array) => mask.fill(0) });
  }
}

/** a connected socket.io client (websocket only, msgpack frames, no reconnection) */
export async function connectSim(url: string, timeoutMs = 30_000): Promise<SimSocket> {
  const s = io(url, { parser, transports: [ZeroMaskWebSocket], reconnection: false, forceNew: true, timeout: timeoutMs }) as SimSocket;
  await new Promise<void>((ok, fail) => {
    s.once('connect', () => ok());
    s.once('connect_error', (e) => fail(new Error(`cannot connect to ${url}: ${e.message}`)));
  });
  return s;
}

export class SimWorker {
  readonly stats: SimStats = { accepted: 0, evals: 0, waits: 0, gradBytes: 0, lost: 0, weightBytes: 0, fetchMs: [] };
  /** the newest weights version announced (the join's, then the 'version' notices) */
  version: number;
  /** the version whose weights this worker downloaded, and a download in progress */
  private have = -1;
  private download?: { version: number; done: Promise<void> };
  private wake: (() => void)[] = [];

  private constructor(
    readonly socket: SimSocket,
    readonly url: string,
    readonly workerId: string,
    readonly runId: string,
    readonly epoch: string,
    /** parameters of the run's model: the gradient's length */
    readonly paramCount: number,
    version: number,
    private readonly ackTimeoutMs: number,
  ) {
    this.version = version;
    socket.on('version', (m) => {
      if (m.runId !== this.runId || m.version <= this.version) return;
      this.version = m.version;
      this.fetch(m.version, performance.now()).catch(() => {}); // a failure shows when the lease needs it
      for (const w of this.wake.splice(0)) w();
    });
  }

  /** connect, hello and join (`runId`, or the run the coordinator picks) */
  static async join(url: string, o: { runId?: string; name?: string; ackTimeoutMs?: number } = {}): Promise<SimWorker> {
    const ackTimeoutMs = o.ackTimeoutMs ?? 120_000;
    const s = await connectSim(url);
    try {
      const w = await ask(s, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: o.name ?? 'sim' }, ackTimeoutMs);
      if (!w.ok) throw new Error(`hello refused: ${w.code}: ${w.reason}`);
      const j = await ask(s, 'join', o.runId ? { runId: o.runId } : {}, ackTimeoutMs);
      if (!j.ok) throw new Error(`join refused: ${j.code}: ${j.reason}`);
      return new SimWorker(s, url, w.workerId, j.run.runId, j.run.epoch, j.run.paramCount, j.version, ackTimeoutMs);
    } catch (e) {
      s.close();
      throw e;
    }
  }

  /**
   * One lease request and its answer: a train lease is answered with `grads` (and `loss`), an eval lease with
   * `loss` per batch; "wait" is waited out until newer weights arrive or the hint's time passes.
   */
  async round(grads: Float32Array<ArrayBuffer>, loss = 2.5): Promise<'submitted' | 'waited'> {
    if (grads.length !== this.paramCount) throw new Error(`the gradient has ${grads.length} elements; the run's model has ${this.paramCount}`);
    const r = await ask(this.socket, 'lease', { runId: this.runId, version: Math.max(0, this.version) }, this.ackTimeoutMs);
    if (!r.ok) throw new Error(`lease refused: ${r.code}: ${r.reason}`);
    if ('wait' in r) {
      this.stats.waits++;
      await this.newerThan(this.version, r.wait);
      return 'waited';
    }
    await this.weightsFor(r.lease);
    const base = { runId: this.runId, leaseId: r.lease.leaseId, version: r.lease.version, computeMs: 0 };
    const train = r.lease.kind === 'train';
    const s = await ask(this.socket, 'submit', train ? { ...base, loss, grads } : { ...base, losses: r.lease.batches.map(() => loss) }, this.ackTimeoutMs);
    if (!s.ok) {
      // a backup copy of this lease answered first (the run backs up leases out past 3× their holder's pace), or the
      // step closed without it: work lost to the swarm's straggler insurance, not an error
      if (s.code === 'duplicate' || s.code === 'expired' || s.code === 'stale') {
        this.stats.lost++;
        return 'submitted';
      }
      throw new Error(`submission refused: ${s.code}: ${s.reason}`);
    }
    if (train) {
      this.stats.accepted++;
      this.stats.gradBytes += grads.byteLength;
    } else this.stats.evals++;
    return 'submitted';
  }

  /** rounds until stop() says so (checked between rounds) */
  async run(grads: Float32Array<ArrayBuffer>, stop: () => boolean): Promise<void> {
    while (!stop()) await this.round(grads);
  }

  close(): void {
    for (const w of this.wake.splice(0)) w();
    this.socket.close();
  }

  /** resolves when a version > v has arrived, or after ms */
  private newerThan(v: number, ms: number): Promise<void> {
    if (this.version > v) return Promise.resolve();
    return new Promise((ok) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        ok();
      }
      this.wake.push(done);
    });
  }

  /** the lease's weights, downloaded (or being downloaded since its notice) */
  private async weightsFor(lease: Lease): Promise<void> {
    if (this.have === lease.version) return;
    await this.fetch(lease.version, performance.now());
  }

  /** GET the weights of version v (once: a second call joins the download in progress) */
  private fetch(v: number, since: number): Promise<void> {
    if (this.download?.version === v) return this.download.done;
    const done = (async () => {
      const { status, bytes } = await drain(new URL(weightsPath(this.runId, this.epoch, v), this.url));
      if (status === 404) return; // the run moved past v: the lease will be refused as stale or expired
      if (status !== 200 || bytes !== this.paramCount * 4) throw new Error(`weights v${v}: HTTP ${status}, ${bytes} bytes`);
      this.stats.weightBytes += bytes;
      this.stats.fetchMs.push(performance.now() - since);
      this.have = Math.max(this.have, v);
    })();
    this.download = { version: v, done };
    return done;
  }
}

/**
 * GET url and count its body's bytes without keeping them (a simulated worker computes nothing on the weights): the
 * coordinator sends every byte as it would to a real worker
 */
export async function drain(url: URL): Promise<{ status: number; bytes: number }> {
  // a kept-alive connection the server closed while idle (keepAliveTimeout, 5 s; a 10M step can take longer) fails
  // the request that reuses it: once more on a fresh one
  let reused = idle.get(url.host)?.pop();
  while (reused && (reused.destroyed || !reused.writable)) reused = idle.get(url.host)?.pop();
  if (reused) {
    try {
      return await getOn(reused, url);
    } catch {
      /* closed while idle */
    }
  }
  return getOn(await open(url), url);
}

/** the longest response head read */
const MAX_HEAD = 8192;
/** kept-alive connections, by host */
const idle = new Map<string, NetSocket[]>();
/** each connection's response in progress */
const pending = new WeakMap<NetSocket, Response>();

interface Response {
  /** the status line and headers, until the blank line */
  head: string;
  status: number;
  /** body bytes still to come (-1 until the head is read) */
  left: number;
  bytes: number;
  ok: (r: { status: number; bytes: number }) => void;
  fail: (e: Error) => void;
}

/** a connection to url's host whose reads land in one reused buffer (net's onread) */
function open(url: URL): Promise<NetSocket> {
  return new Promise((ok, fail) => {
    const buffer = Buffer.allocUnsafe(1 << 18);
    const sock = connect({
      host: url.hostname,
      port: Number(url.port || 80),
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array) => {
          read(sock, buf.subarray(0, n));
          return true;
        },
      },
    });
    sock.once('connect', () => {
      sock.off('error', fail);
      ok(sock);
    });
    sock.once('error', fail);
    sock.on('error', (e) => pending.get(sock)?.fail(e));
    sock.on('close', () => pending.get(sock)?.fail(new Error('connection closed before the response ended')));
    // closed by the server while idle: out of the pool
    const drop = () => {
      const list = idle.get(url.host);
      const i = list?.indexOf(sock) ?? -1;
      if (i >= 0) list!.splice(i, 1);
    };
    sock.on('end', drop);
    sock.on('close', drop);
  });
}

function getOn(sock: NetSocket, url: URL): Promise<{ status: number; bytes: number }> {
  return new Promise((ok, fail) => {
    const settle = () => pending.delete(sock);
    pending.set(sock, {
      head: '',
      status: 0,
      left: -1,
      bytes: 0,
      ok: (r) => {
        settle();
        const list = idle.get(url.host) ?? [];
        idle.set(url.host, list);
        list.push(sock);
        ok(r);
      },
      fail: (e) => {
        settle();
        sock.destroy();
        fail(e);
      },
    });
    // a write to a connection the server has just closed fails only through its callback (EPIPE)
    sock.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n\r\n`, (e) => {
      if (e) pending.get(sock)?.fail(e);
    });
  });
}

/** one read of a connection: the response's head (parsed once whole), then its body counted until Content-Length */
function read(sock: NetSocket, chunk: Uint8Array): void {
  const r = pending.get(sock);
  if (!r) {
    sock.destroy(); // bytes nobody asked for
    return;
  }
  let body = chunk;
  if (r.left < 0) {
    const before = r.head.length;
    r.head += Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.length, MAX_HEAD)).toString('latin1');
    const end = r.head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (r.head.length >= MAX_HEAD) r.fail(new Error(`no end of the response's head in ${MAX_HEAD} bytes`));
      return;
    }
    body = chunk.subarray(end + 4 - before);
    const lines = r.head.slice(0, end).split('\r\n');
    r.status = Number(lines[0].split(' ')[1]);
    const length = lines.find((l) => /^content-length:/i.test(l));
    if (!length) return r.fail(new Error(`HTTP ${r.status} without Content-Length: this client reads only sized bodies`));
    r.left = Number(length.slice(length.indexOf(':') + 1));
  }
  r.bytes += body.length;
  r.left -= body.length;
  if (r.left === 0) r.ok({ status: r.status, bytes: r.bytes });
  else if (r.left < 0) r.fail(new Error('more bytes than Content-Length'));
}

function ask<E extends keyof ClientToServerEvents>(s: SimSocket, event: E, payload: Parameters<ClientToServerEvents[E]>[0], timeoutMs: number): Promise<Reply<E>> {
  const t = s as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<Reply<E>> } };
  return t.timeout(timeoutMs).emitWithAck(event, payload);
}

/** a gradient of n small uniform values (deterministic from seed), finite and summing to no overflow */
export function randomGradient(n: number, seed = 1, scale = 1e-3): Float32Array<ArrayBuffer> {
  const g = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    g[i] = ((x >>> 0) / 4294967296 - 0.5) * scale;
  }
  return g;
}
