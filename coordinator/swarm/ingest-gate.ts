// Bounds the memory the coordinator spends on gradients in flight. A gradient arrives as a small head message and then
// its chunks (shared/codec.ts: the decoder allocates each array at its first chunk). The gate lets gradients arrive on
// at most max(1, budgetBytes / frameBytes) sockets at a time: a socket whose head arrives while the gate is full is
// paused (ws stops reading, TCP holds the rest at the worker, and the decoder has allocated nothing yet) and resumed in
// arrival order as gradients complete (their last chunk read) or their sockets close. Every other message passes. A
// socket paused longer than maxWaitMs is let in anyway, over the budget: slow uploaders must not stall the others into
// the heartbeat timeout (engine.io closes a socket that does not answer its ping within pingInterval + pingTimeout,
// 45 s by default). Likewise a gradient that stops mid-way for maxWaitMs gives its slot back (a stalled or slowloris
// sender must not hold the gate shut).
//
// Only websocket connections are gated (the polling transport's bodies are limited by maxHttpBufferSize).
import { headChunks } from '../../shared/codec.ts';

/** the ws WebSocket under an engine.io websocket transport: pause/resume (ws ≥ 8) hold reads across ws's own drain handling */
interface Ws {
  pause(): void;
  resume(): void;
  on(e: 'message', f: (data: unknown) => void): void;
  on(e: 'close', f: () => void): void;
}

interface EngineTransport {
  name: string;
  socket?: unknown;
}

/** what the gate needs of an engine.io connection */
export interface EngineConn {
  transport: EngineTransport;
  on(e: 'upgrade', f: (transport: EngineTransport) => void): void;
}

interface Entry {
  ws: Ws;
  /** chunks still to come of the gradient in progress (0: between gradients) */
  left: number;
  state: 'idle' | 'admitted' | 'queued';
  queuedAt: number;
  /** when its last chunk came */
  lastAt: number;
}

export interface IngestGateOptions {
  /** bytes of gradients that may be in flight at once (at least one is always let in) */
  budgetBytes: number;
  /** a paused socket is let in after this long, over the budget */
  maxWaitMs?: number;
}

const asBytes = (d: unknown): Uint8Array | undefined => (d instanceof Uint8Array ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : undefined);

export class IngestGate {
  /** the largest gradient expected (a run's model); sets how many fit in the budget */
  frameBytes = 0;
  /** sockets paused so far, and of them those let in over the budget after maxWaitMs; slots given back by stalled uploads */
  paused = 0;
  overdueAdmits = 0;
  stalled = 0;
  private readonly admitted = new Set<Entry>();
  private readonly queue: Entry[] = [];
  /** each followed connection's entry */
  private readonly entries = new WeakMap<EngineConn, Entry>();
  private readonly maxWaitMs: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly o: IngestGateOptions) {
    this.maxWaitMs = o.maxWaitMs ?? 10_000;
    this.timer = setInterval(() => this.overdue(), 1000);
    this.timer.unref?.();
  }

  get slots(): number {
    return Math.max(1, Math.floor(this.o.budgetBytes / Math.max(1, this.frameBytes)));
  }

  /** sockets paused now (tests, status) */
  get waiting(): number {
    return this.queue.length;
  }

  /** follow an engine.io connection (now if it is a websocket, else when it upgrades to one) */
  watch(conn: EngineConn): void {
    const ws = (t: EngineTransport) => (t.name === 'websocket' && t.socket ? (t.socket as Ws) : undefined);
    const now = ws(conn.transport);
    if (now) this.follow(now, conn);
    else conn.on('upgrade', (t) => void (ws(t) && this.follow(ws(t)!, conn)));
  }

  /** whether a gradient is arriving on this connection or waiting at the gate (an answer on its way) */
  uploading(conn: EngineConn): boolean {
    const e = this.entries.get(conn);
    return e !== undefined && e.state !== 'idle';
  }

  close(): void {
    clearInterval(this.timer);
    for (const e of this.queue.splice(0)) e.ws.resume();
    this.admitted.clear();
  }

  private follow(ws: Ws, conn: EngineConn): void {
    const e: Entry = { ws, left: 0, state: 'idle', queuedAt: 0, lastAt: 0 };
    this.entries.set(conn, e);
    ws.on('message', (data) => {
      e.lastAt = performance.now();
      if (e.left > 0) {
        if (--e.left === 0) this.done(e);
        return;
      }
      const bytes = asBytes(data);
      const chunks = bytes && headChunks(bytes);
      if (!chunks) return;
      e.left = chunks;
      if (this.admitted.size < this.slots) this.admit(e);
      else {
        e.state = 'queued';
        e.queuedAt = performance.now();
        this.queue.push(e);
        this.paused++;
        ws.pause();
      }
    });
    ws.on('close', () => {
      e.left = 0;
      this.done(e);
    });
  }

  /** e's gradient is in, or e left: its slot (or its place in the queue) goes */
  private done(e: Entry): void {
    if (e.state === 'admitted') {
      this.admitted.delete(e);
      while (this.queue.length && this.admitted.size < this.slots) this.letIn(this.queue.shift()!);
    } else if (e.state === 'queued') {
      // completed from what ws had read before the pause: nothing left to hold
      this.queue.splice(this.queue.indexOf(e), 1);
      e.ws.resume();
    }
    e.state = 'idle';
  }

  private admit(e: Entry): void {
    e.state = 'admitted';
    this.admitted.add(e);
  }

  private letIn(e: Entry): void {
    this.admit(e);
    e.lastAt = performance.now(); // its stall clock starts now, not at its head
    e.ws.resume();
  }

  private overdue(): void {
    const t = performance.now();
    while (this.queue.length && t - this.queue[0].queuedAt > this.maxWaitMs) {
      this.overdueAdmits++;
      this.letIn(this.queue.shift()!);
    }
    for (const e of this.admitted) {
      if (t - e.lastAt > this.maxWaitMs) {
        this.stalled++;
        this.done(e); // its remaining chunks, if they come, pass uncounted
      }
    }
  }
}
