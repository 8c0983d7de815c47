// Bounds the memory the coordinator spends on gradients in flight. ws buffers a whole frame before socket.io sees it,
// so N workers uploading at once hold N gradients at the coordinator (64 workers × a 10 M-parameter gradient: 2.5 GB,
// measured by bench/swarm.ts). The gate lets large frames (over `smallBytes`) arrive on at most
// max(1, budgetBytes / frameBytes) sockets at a time; a socket whose large frame starts while the gate is full is
// paused (its reads stop and TCP holds the rest at the worker) and resumed in arrival order as frames complete.
// Small messages (hello, lease, acks) are never held. A socket paused longer than maxWaitMs is let in anyway, over
// the budget: slow uploaders must not stall the others into the heartbeat timeout (engine.io closes a socket that
// does not answer its ping within pingInterval + pingTimeout, 45 s by default).
//
// Only websocket connections are gated (the polling transport's bodies are limited by maxHttpBufferSize).

/**
 * the ws WebSocket under an engine.io websocket transport: pause/resume (ws ≥ 8) hold reads across ws's own drain
 * handling; _socket, its TCP socket (ws internals, pinned by package-lock), shows frames as they arrive
 */
interface Ws {
  pause(): void;
  resume(): void;
  on(e: 'message' | 'close', f: () => void): void;
  _socket: { on(e: 'data', f: (chunk: Uint8Array) => void): void };
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
  /** bytes read since the socket's last complete message: roughly what ws holds of the frame in progress */
  pending: number;
  state: 'idle' | 'admitted' | 'queued';
  queuedAt: number;
}

export interface IngestGateOptions {
  /** bytes of large frames that may be in flight at once (at least one frame is always let in) */
  budgetBytes: number;
  /** frames up to this size pass freely */
  smallBytes?: number;
  /** a paused socket is let in after this long, over the budget */
  maxWaitMs?: number;
}

export class IngestGate {
  /** the largest frame expected (a run's gradient); sets how many fit in the budget */
  frameBytes = 0;
  /** sockets paused so far, and of them those let in over the budget after maxWaitMs */
  paused = 0;
  overdueAdmits = 0;
  private readonly admitted = new Set<Entry>();
  private readonly queue: Entry[] = [];
  /** each followed connection's entry */
  private readonly entries = new WeakMap<EngineConn, Entry>();
  private readonly smallBytes: number;
  private readonly maxWaitMs: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly o: IngestGateOptions) {
    this.smallBytes = o.smallBytes ?? 256 << 10;
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
    const ws = (t: EngineTransport) => (t.name === 'websocket' && (t.socket as Ws | undefined)?._socket ? (t.socket as Ws) : undefined);
    const now = ws(conn.transport);
    if (now) this.follow(now, conn);
    else conn.on('upgrade', (t) => void (ws(t) && this.follow(ws(t)!, conn)));
  }

  /** whether a large frame is arriving on this connection or waiting at the gate (an answer on its way) */
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
    const e: Entry = { ws, pending: 0, state: 'idle', queuedAt: 0 };
    this.entries.set(conn, e);
    ws._socket.on('data', (chunk) => {
      e.pending += chunk.byteLength;
      if (e.state !== 'idle' || e.pending <= this.smallBytes) return;
      if (this.admitted.size < this.slots) this.admit(e);
      else {
        e.state = 'queued';
        e.queuedAt = performance.now();
        this.queue.push(e);
        this.paused++;
        ws.pause();
      }
    });
    ws.on('message', () => {
      e.pending = 0;
      if (e.state === 'admitted') this.release(e);
      else if (e.state === 'queued') {
        // the frame completed from data read before the pause: nothing left to hold
        this.queue.splice(this.queue.indexOf(e), 1);
        e.state = 'idle';
        ws.resume();
      }
    });
    ws.on('close', () => {
      if (e.state === 'admitted') this.release(e);
      else if (e.state === 'queued') this.queue.splice(this.queue.indexOf(e), 1);
      e.state = 'idle';
    });
  }

  private admit(e: Entry): void {
    e.state = 'admitted';
    this.admitted.add(e);
  }

  private release(e: Entry): void {
    this.admitted.delete(e);
    e.state = 'idle';
    while (this.queue.length && this.admitted.size < this.slots) this.letIn(this.queue.shift()!);
  }

  private letIn(e: Entry): void {
    this.admit(e);
    e.ws.resume();
  }

  private overdue(): void {
    const t = performance.now();
    while (this.queue.length && t - this.queue[0].queuedAt > this.maxWaitMs) {
      this.overdueAdmits++;
      this.letIn(this.queue.shift()!);
    }
  }
}
