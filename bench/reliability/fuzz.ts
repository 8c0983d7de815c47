// The fuzz driver: sends the frames of ./fuzz-frames.ts to a live coordinator from many connections at once (half
// of them said hello and joined the run first, so frames reach the run's code), one frame at a time per
// connection: a raw frame is followed by a probe round trip (an ack proves the coordinator took the frame in order)
// or the connection's close; an event with an ack waits for its reply. A connection is replaced when the coordinator
// closes it and after 100 frames (under the per-connection rate limit, so the frames reach the schema checks and
// the run rather than the limiter). After every batch of frames: GET /api/health must answer and the process must
// be alive; memory is read (after a GC where the target can) before the first frame, after each batch and at the
// end. One honest worker trains the run throughout.
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';
import { frames, type Frame } from './fuzz-frames.ts';
import { connected, openSocket, sleep, type SimSocket } from './sim.ts';

export interface Memory {
  rss: number;
  heapUsed: number;
}

export interface FuzzTarget {
  url: string;
  runId: string;
  params: number;
  memory(): Promise<Memory>;
  /** false once the coordinator's process has died */
  alive(): boolean;
  /** optimizer steps the run has done (training goes on under the fuzz) */
  steps(): Promise<number>;
  /** workers the run's table holds (it keeps one row per worker id ever joined) */
  workerRows(): Promise<number>;
}

export interface FuzzOptions {
  frames: number;
  seed: number;
  /** connections sending at once */
  lanes: number;
  /** frames between health checks */
  batch: number;
  log?: (line: string) => void;
}

export interface FuzzResult {
  seed: number;
  frames: number;
  byKind: Record<string, number>;
  /** replies to events with an ack, by refusal code ('ok' for an accepted one, 'none' when the connection closed first) */
  replies: Record<string, number>;
  connections: number;
  /** connections the coordinator closed (a malformed frame, a frame over the size limit, a flood) */
  closedByCoordinator: number;
  healthChecks: number;
  healthFailures: number;
  crashed: boolean;
  memBefore: Memory;
  memAfter: Memory;
  memPeak: Memory;
  stepsBefore: number;
  stepsAfter: number;
  workerRowsBefore: number;
  workerRowsAfter: number;
  seconds: number;
}

interface Conn {
  s: SimSocket;
  sent: number;
  closed: Promise<void>;
  byUs: boolean;
}

type Ask = { timeout(ms: number): { emitWithAck(e: string, ...a: unknown[]): Promise<unknown> } };

async function health(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}api/health`, { signal: AbortSignal.timeout(10_000) });
    return r.ok && ((await r.json()) as { ok?: boolean }).ok === true;
  } catch {
    return false;
  }
}

export async function runFuzz(t: FuzzTarget, o: FuzzOptions): Promise<FuzzResult> {
  const r: FuzzResult = {
    seed: o.seed,
    frames: 0,
    byKind: {},
    replies: {},
    connections: 0,
    closedByCoordinator: 0,
    healthChecks: 0,
    healthFailures: 0,
    crashed: false,
    memBefore: await t.memory(),
    memAfter: { rss: 0, heapUsed: 0 },
    memPeak: { rss: 0, heapUsed: 0 },
    stepsBefore: await t.steps(),
    stepsAfter: 0,
    workerRowsBefore: await t.workerRows(),
    workerRowsAfter: 0,
    seconds: 0,
  };
  r.memPeak = { ...r.memBefore };
  const reply = (code: string) => (r.replies[code] = (r.replies[code] ?? 0) + 1);
  const t0 = performance.now();

  const open = async (): Promise<Conn> => {
    const s = openSocket(t.url, { reconnect: false });
    const c: Conn = { s, sent: 0, byUs: false, closed: Promise.resolve() };
    c.closed = new Promise<void>((ok) => s.once('disconnect', () => ok()));
    void c.closed.then(() => !c.byUs && r.closedByCoordinator++);
    r.connections++;
    await connected(s, 10_000);
    if (r.connections % 2) {
      const ask = (s as unknown as Ask).timeout(5000);
      await ask.emitWithAck('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: 'fuzz' }).catch(() => {});
      await ask.emitWithAck('join', { runId: t.runId }).catch(() => {});
    }
    return c;
  };
  const close = (c: Conn) => {
    c.byUs = true;
    c.s.close();
  };
  /**
   * resolves once the coordinator has taken everything sent so far on c (a probe's ack comes back in order), or has
   * closed c; a probe unanswered for 1.5 s (say the namespace was left and the close is on its way) closes c from our
   * side
   */
  const settle = async (c: Conn) => {
    if (!c.s.connected) return;
    const probe = (c.s as unknown as Ask).timeout(1500).emitWithAck('lease', { runId: '-', version: 0 }).then(
      () => true,
      () => false,
    );
    const answered = await Promise.race([probe, c.closed.then(() => true)]);
    if (!answered) {
      reply('probe unanswered');
      close(c);
    }
  };
  const send = async (c: Conn, f: Frame) => {
    r.byKind[f.kind] = (r.byKind[f.kind] ?? 0) + 1;
    r.frames++;
    if ('raw' in f) {
      (c.s.io.engine as unknown as { write(b: Uint8Array | string): void }).write(f.raw);
      return settle(c);
    }
    const s = c.s as unknown as { emit(e: string, ...a: unknown[]): void; once(e: 'refused', f: (r: { code: string }) => void): void } & Ask;
    try {
      if (f.ack) {
        // the reply comes through the ack, or (when the ack is not the payload's neighbour) as a 'refused' event
        const p = s.timeout(5000).emitWithAck(f.event, ...f.args);
        const refusedEvent = new Promise<{ ok: false; code: string }>((ok) => s.once('refused', (x) => ok({ ok: false, code: `${x.code} (event)` })));
        const v = (await Promise.race([p, refusedEvent, c.closed.then(() => 'closed' as const)])) as { ok?: boolean; code?: string } | 'closed';
        p.catch(() => {});
        reply(v === 'closed' ? 'none' : v && typeof v === 'object' ? (v.ok ? 'ok' : String(v.code)) : 'odd');
      } else {
        s.emit(f.event, ...f.args);
        await settle(c);
      }
    } catch (e) {
      // socket.io-client refuses reserved names ('connect', 'disconnect', ...) and what it cannot encode
      reply(`not sent (${(e as Error).message.slice(0, 40)})`);
    }
  };
  const lane = async (fs: Frame[]) => {
    let c: Conn | undefined;
    for (const f of fs) {
      if (!c || !c.s.connected || c.sent >= 100) {
        if (c) close(c);
        c = await open().catch(() => undefined);
        if (!c) continue;
      }
      await send(c, f);
      c.sent++;
    }
    if (c) close(c);
  };

  const gen = frames(o.seed, o.frames, { runId: t.runId, params: t.params });
  for (let done = 0; done < o.frames && !r.crashed; done += o.batch) {
    const batch: Frame[] = [];
    for (let i = 0; i < o.batch && done + i < o.frames; i++) batch.push(gen.next().value as Frame);
    const lanes = Array.from({ length: o.lanes }, (_, k) => batch.filter((_, i) => i % o.lanes === k));
    await Promise.all(lanes.map(lane));
    r.healthChecks++;
    if (!(await health(t.url))) r.healthFailures++;
    if (!t.alive()) r.crashed = true;
    if (r.crashed) break;
    const m = await t.memory();
    r.memPeak = { rss: Math.max(r.memPeak.rss, m.rss), heapUsed: Math.max(r.memPeak.heapUsed, m.heapUsed) };
    o.log?.(`fuzz: ${r.frames} frames, ${r.connections} connections (${r.closedByCoordinator} closed by the coordinator), rss ${(m.rss / 2 ** 20).toFixed(0)} MiB, heap ${(m.heapUsed / 2 ** 20).toFixed(0)} MiB`);
  }
  await sleep(100);
  r.seconds = (performance.now() - t0) / 1000;
  if (!r.crashed) {
    r.memAfter = await t.memory();
    r.stepsAfter = await t.steps();
    r.workerRowsAfter = await t.workerRows();
  }
  return r;
}
