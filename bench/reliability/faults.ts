// Faults of honest volunteers, each in its own run on a live coordinator beside 4 healthy simulated workers: a
// volunteer that dies before, during or after an upload (its TCP connection destroyed as a killed process's is), a
// network cut with socket.io's own reconnect (the worker resyncs: hello, join, weights), a slow volunteer whose lease
// times out. After each: every batch applied exactly once ({i → ⌊i/A⌋}) and the run finished its K steps.
// A coordinator killed with SIGKILL is tests/e2e/restart.test.ts; a GPU lost in the browser is
// tests/e2e/volunteer-page.test.ts.
import type { SwarmRun } from '../../coordinator/swarm/run.ts';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { packValue } from '../../shared/codec.ts';
import type { Lease, Submission } from '../../shared/protocol.ts';
import type { RunConfig, SwarmConfig } from '../../shared/train/run-config.ts';
import { accountingProblem, pollHealth, tallyInto, until, type Health } from './checks.ts';
import type { ConfigOverrides } from './matrix.ts';
import { rawWs, SessionEnded, SimWorker, sleep } from './sim.ts';

export interface FaultContext {
  coord: Coordinator;
  run: SwarmRun;
  url: string;
  runId: string;
}

export interface Fault {
  name: string;
  /** what was done, in words */
  tried: string;
  swarm?: Partial<SwarmConfig>;
  /** performs the fault (spawning its own workers) and returns what it observed; resolves before the run ends */
  act(ctx: FaultContext): Promise<{ observed: Record<string, number | boolean>; workers: SimWorker[] }>;
}

export interface FaultOptions {
  coord: Coordinator;
  config: (over: ConfigOverrides) => RunConfig;
  steps: number;
  honest: number;
  /** ms each honest answer takes (paces the run so that the faults land mid-run) */
  computeMs: number;
  seed: number;
  timeoutMs: number;
  log?: (line: string) => void;
}

export interface FaultResult {
  name: string;
  tried: string;
  steps: number;
  finished: boolean;
  seconds: number;
  accounting?: string;
  observed: Record<string, number | boolean>;
  /** refusals the faulty workers got, by code */
  codes: Record<string, number>;
  health: Health;
  notes: string[];
}

const running = (run: SwarmRun) => run.status === 'running';

/** a worker that computes its lease, then `fate`s (which must end the session); resolves with its id and lease */
function doomed(ctx: FaultContext, name: string, fate: (w: SimWorker, sub: Submission, lease: Lease) => Promise<void>) {
  let w!: SimWorker;
  const done = new Promise<{ workerId: string; lease: Lease }>((ok) => {
    w = new SimWorker({
      url: ctx.url,
      runId: ctx.runId,
      name,
      onLease: async (w, lease) => {
        if (!(await w.sync(lease.version))) return;
        const id = w.workerId!;
        await fate(w, w.compute(lease), lease);
        ok({ workerId: id, lease });
        throw new SessionEnded(name);
      },
    }).start();
  });
  return { w, done };
}

/** the engine.io packet of an event with an ack, as the msgpack parser frames it */
const eventFrame = (event: string, payload: unknown, id: number) => packValue([2, '/', [event, payload], id]);

/** a masked client websocket frame header for a binary message of n bytes (mask 0: the payload goes as it is) */
function wsHeader(n: number): Uint8Array {
  if (n < 126) return new Uint8Array([0x82, 0x80 | n, 0, 0, 0, 0]);
  if (n < 65536) return new Uint8Array([0x82, 0x80 | 126, n >> 8, n & 255, 0, 0, 0, 0]);
  const h = new Uint8Array(14);
  h[0] = 0x82;
  h[1] = 0x80 | 127;
  new DataView(h.buffer).setBigUint64(2, BigInt(n));
  return h;
}

/** each death's lease is back in the queue within this long (a closed socket releases its leases at once) */
const RELEASE_MS = 3000;

/** deaths spread over the run: the k-th when the run reaches step 2k */
async function deaths(ctx: FaultContext, n: number, name: string, fate: (w: SimWorker, sub: Submission, lease: Lease) => Promise<void>) {
  const workers: SimWorker[] = [];
  const out: { workerId: string; lease: Lease; releasedMs: number }[] = [];
  for (let k = 0; k < n && running(ctx.run); k++) {
    await until(() => ctx.run.version >= 2 * k || !running(ctx.run), 60_000);
    const { w, done } = doomed(ctx, `${name}-${k}`, fate);
    workers.push(w);
    const d = await Promise.race([done, until(() => !running(ctx.run), 60_000).then(() => undefined)]);
    if (!d) break;
    const t = performance.now();
    await until(() => ctx.run.leasesOf(d.workerId) === 0, RELEASE_MS);
    out.push({ ...d, releasedMs: ctx.run.leasesOf(d.workerId) === 0 ? performance.now() - t : Infinity });
  }
  return { workers, out };
}

/** the credit the run gave a (dead) worker: leases applied (train + eval) */
const credited = (run: SwarmRun, id: string) => {
  const s = run.workers.get(id);
  return s ? s.leases + s.evalLeases : 0;
};

/** after the deaths, the run to its end: how many died, whether their leases came back (and how fast), and any credit they kept */
async function diedDuringRun(ctx: FaultContext, workers: SimWorker[], out: { workerId: string; releasedMs: number }[]) {
  await until(() => !running(ctx.run), 60_000);
  return {
    workers,
    observed: {
      deaths: out.length,
      released: out.every((d) => Number.isFinite(d.releasedMs)),
      maxReleaseMs: Math.round(Math.max(0, ...out.map((d) => d.releasedMs))),
      creditedToDead: out.reduce((a, d) => a + credited(ctx.run, d.workerId), 0),
    },
  };
}

export const FAULTS: Fault[] = [
  {
    name: 'dies-before-upload',
    tried: 'three volunteers each take a lease, compute it and die (TCP connection destroyed, no close handshake) before sending it',
    async act(ctx) {
      const { workers, out } = await deaths(ctx, 3, 'dies-before', async (w) => w.die());
      return diedDuringRun(ctx, workers, out);
    },
  },
  {
    name: 'dies-mid-upload',
    tried: 'three volunteers each send the first half of their gradient frame (a websocket frame header for the whole message, half its bytes) and die',
    async act(ctx) {
      const { workers, out } = await deaths(ctx, 3, 'dies-mid', async (w, sub) => {
        const whole = eventFrame('submit', sub, 0);
        const ws = rawWs(w.socket)!;
        w.stop();
        w.socket.io.reconnection(false);
        const header = wsHeader(whole.length);
        const half = new Uint8Array(header.length + (whole.length >> 1));
        half.set(header);
        half.set(whole.subarray(0, whole.length >> 1), header.length);
        ws._socket.write(half);
        await sleep(50); // let the half frame reach the coordinator before the connection goes
        ws._socket.destroy();
      });
      return diedDuringRun(ctx, workers, out);
    },
  },
  {
    name: 'closed-right-after-emit',
    tried: "three volunteers each emit their submit and close the engine at once (socket.io-client's engine.close(), no reconnect)",
    async act(ctx) {
      const { workers, out } = await deaths(ctx, 3, 'closes-after-emit', async (w, sub) => {
        w.stop();
        w.socket.io.reconnection(false);
        w.socket.emit('submit', sub, () => {});
        w.socket.io.engine.close();
      });
      await until(() => !running(ctx.run), 60_000);
      const counted = out.filter((d) => credited(ctx.run, d.workerId) === 1).length;
      return {
        workers,
        observed: {
          deaths: out.length,
          released: out.every((d) => Number.isFinite(d.releasedMs)),
          // either the answer arrived before the close (counted once) or it did not (released): never both
          counted,
          releasedUncounted: out.length - counted,
        },
      };
    },
  },
  {
    name: 'dies-after-upload',
    tried: 'three volunteers each submit, get the ack and die at once',
    async act(ctx) {
      const { workers, out } = await deaths(ctx, 3, 'dies-after', async (w, sub) => {
        const r = await w.submit(sub);
        if (!r.ok) w.note(`its answer was refused: ${r.code}`);
        w.die();
      });
      await until(() => !running(ctx.run), 60_000);
      return {
        workers,
        observed: {
          deaths: out.length,
          creditedToDead: out.reduce((a, d) => a + credited(ctx.run, d.workerId), 0),
        },
      };
    },
  },
  {
    name: 'network-cut',
    tried: "one volunteer's connection is cut (engine.io closed under it) three times while it holds a computed lease (steps 1-3) and once while idle; socket.io-client reconnects on its own; after each reconnect the worker sends the answer it held",
    async act(ctx) {
      const held: Submission[] = [];
      let cuts = 0;
      let idleCut = false;
      const recovered: boolean[] = [];
      const late: string[] = [];
      let cutAt = 0;
      let maxResyncMs = 0;
      const w = new SimWorker({
        url: ctx.url,
        runId: ctx.runId,
        name: 'cut',
        onSession: async (w) => {
          if (cutAt) maxResyncMs = Math.max(maxResyncMs, performance.now() - cutAt);
          recovered.push(w.socket.recovered);
          for (const sub of held.splice(0)) {
            const r = await w.submit(sub);
            late.push(r.ok ? 'accepted' : r.code);
          }
        },
        onLease: async (w, lease) => {
          if (!(await w.sync(lease.version))) return;
          const sub = w.compute(lease);
          if (cuts < 3 && ctx.run.version >= cuts) {
            cuts++;
            held.push(sub);
            cutAt = performance.now();
            w.socket.io.engine.close();
            throw new SessionEnded('cut');
          }
          await w.submit(sub);
          if (cuts === 3 && !idleCut) {
            idleCut = true;
            cutAt = performance.now();
            w.socket.io.engine.close();
            throw new SessionEnded('cut');
          }
        },
      }).start();
      await until(() => !running(ctx.run), 60_000);
      return {
        workers: [w],
        observed: {
          cuts: cuts + (idleCut ? 1 : 0),
          sessions: w.sessions,
          /** reconnects that socket.io's connection state recovery restored (same socket id; the worker says hello anew) */
          recovered: recovered.filter(Boolean).length,
          /** cut → joined again with fresh weights, the slowest */
          maxResyncMs: Math.round(maxResyncMs),
          lateExpired: late.filter((x) => x === 'expired').length,
          lateAccepted: late.filter((x) => x === 'accepted').length,
          acceptedAfterCuts: w.accepted,
        },
      };
    },
  },
  {
    name: 'slow-volunteers',
    tried: 'two volunteers each take 2.5 s over their first train lease with lease_timeout_s = 1: the batch goes to another worker (as a backup lease once it is 3× the usual lease time late, or at the timeout); the late answer comes anyway',
    swarm: { lease_timeout_s: 1 },
    async act(ctx) {
      const late: string[] = [];
      const workers = [0, 1].map((k) => {
        let slow = false;
        return new SimWorker({
          url: ctx.url,
          runId: ctx.runId,
          name: `slow-${k}`,
          onLease: async (w, lease) => {
            if (!(await w.sync(lease.version))) return;
            const sub = w.compute(lease);
            if (!slow && lease.kind === 'train') {
              slow = true;
              await sleep(2500);
              const r = await w.submit(sub);
              late.push(r.ok ? 'accepted' : r.code);
              return;
            }
            await w.submit(sub);
          },
        }).start();
      });
      await until(() => late.length === 2, 60_000);
      await until(() => !running(ctx.run), 60_000);
      return {
        workers,
        observed: {
          slowLeases: late.length,
          // refused as expired (the lease timed out) or as a duplicate (a backup's answer counted first)
          lateExpired: late.filter((x) => x === 'expired' || x === 'duplicate').length,
          lateAccepted: late.filter((x) => x === 'accepted').length,
          acceptedOnTime: workers.reduce((a, w) => a + w.accepted, 0),
        },
      };
    },
  },
];

let runSeq = 0;

/** one run: `fault` beside o.honest healthy workers, for o.steps steps (A = 6, more than the healthy workers, so a faulty one gets leases too; an eval every 4 steps) */
export async function runFault(o: FaultOptions, fault: Fault): Promise<FaultResult> {
  const runId = `fault-${fault.name}-${++runSeq}`;
  const config = o.config({
    train: { max_steps: o.steps, seed: o.seed, eval_interval: 4, eval_batches: 2 },
    swarm: { target_batch_size: 6 * o.config({}).data.batch_size, lease_timeout_s: 10, ...fault.swarm },
  });
  const run = await o.coord.addRun(config, { id: runId });
  const url = o.coord.url;
  const poll = pollHealth(url);
  const t0 = performance.now();
  const honest = Array.from({ length: o.honest }, (_, i) => new SimWorker({ url, runId, name: `honest-${i}`, computeMs: o.computeMs }).start());
  const acted = fault.act({ coord: o.coord, run, url, runId });
  const finished = await until(() => run.status === 'done', o.timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  const { observed, workers } = await Promise.race([acted, sleep(5000).then(() => ({ observed: { 'fault did not finish': true }, workers: [] as SimWorker[] }))]);
  await Promise.all([...honest, ...workers].map((w) => w.close()));
  const health = await poll.stop();
  if (!finished) run.setStatus('stopped', 'the reliability suite gave up on it');
  const codes: Record<string, number> = {};
  const notes: string[] = [];
  for (const w of workers) {
    tallyInto(codes, w.codes);
    for (const n of w.notes) if (!notes.includes(n)) notes.push(n);
  }
  const r: FaultResult = { name: fault.name, tried: fault.tried, steps: run.version, finished, seconds, accounting: accountingProblem(run), observed, codes, health, notes };
  o.log?.(`${fault.name}: ${r.steps} steps in ${seconds.toFixed(1)} s, ${r.accounting ?? 'every batch applied once'}, ${JSON.stringify(observed)}, refused ${JSON.stringify(codes)}`);
  return r;
}
