// What the reliability suites measure on the coordinator's side: the validation loss of a run's weights (the float64
// reference model over fixed eval batches), the exact-accounting record, the health route answering throughout,
// and a fresh honest client able to join.
import type { SwarmRun } from '../../coordinator/swarm/run.ts';
import { modelLoss } from '../../shared/models/reference/index.ts';
import { goneVersion, PROTOCOL_VERSION, weightsPath, type JoinReply } from '../../shared/protocol.ts';
import { tensor } from '../../shared/tensor.ts';
import { connected, openSocket, sleep } from './sim.ts';

/** the mean loss of the run's current weights over n fixed validation batches (dataset.evalBatch), on the CPU */
export function valLoss(run: SwarmRun, n = 16): number {
  const { batch_size: B, block_size: T } = run.config.data;
  let s = 0;
  for (let j = 0; j < n; j++) {
    const b = run.dataset.evalBatch(j, n, B, T);
    s += modelLoss(run.config.model, run.params, tensor([B, T], b.idx), tensor([B, T], b.targets));
  }
  return s / n;
}

/**
 * undefined when SwarmRun.applied is exactly {i → ⌊i/A⌋}: every batch of the steps done applied once, in its own step
 * (and any batch of the open step in that step); otherwise what is wrong, in words
 */
export function accountingProblem(run: SwarmRun): string | undefined {
  const A = run.accum;
  const done = run.version * A;
  for (let i = 0; i < done; i++) {
    const s = run.applied.get(i);
    if (s === undefined) return `batch ${i} of step ${Math.floor(i / A) + 1} was never applied`;
  }
  for (const [i, s] of run.applied) if (s !== Math.floor(i / A)) return `batch ${i} was applied in step ${s + 1}, not ${Math.floor(i / A) + 1}`;
  const extra = run.applied.size - done;
  if (extra < 0 || extra > A) return `${run.applied.size} batches applied after ${run.version} steps of ${A}`;
  return undefined;
}

export interface Health {
  polls: number;
  failures: number;
  /** the slowest answer, ms */
  maxMs: number;
}

/** GET /api/health every intervalMs until stop() */
export function pollHealth(url: string, intervalMs = 200): { health: Health; stop: () => Promise<Health> } {
  const health: Health = { polls: 0, failures: 0, maxMs: 0 };
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      try {
        const r = await fetch(`${url}api/health`, { signal: AbortSignal.timeout(5000) });
        const j = (await r.json()) as { ok?: boolean };
        if (!r.ok || j.ok !== true) health.failures++;
      } catch {
        health.failures++;
      }
      health.polls++;
      health.maxMs = Math.max(health.maxMs, performance.now() - t);
      await sleep(intervalMs);
    }
  })();
  return {
    health,
    stop: async () => {
      on = false;
      await loop;
      return health;
    },
  };
}

/** a fresh honest client: connects, says hello, joins the run and asks for its weights; true if it got them */
export async function freshClientJoins(url: string, runId: string, paramCount: number): Promise<boolean> {
  const s = openSocket(url, { reconnect: false });
  try {
    await connected(s, 10_000);
    const ask = <T>(e: string, p: unknown) => (s as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<T> } }).timeout(10_000).emitWithAck(e, p);
    const hello = await ask<{ ok: boolean }>('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: 'probe' });
    const join = await ask<JoinReply>('join', { runId });
    if (!hello.ok || !join.ok) return false;
    // the run may step between the join and the GET: a 404 names the version it is at now
    for (let v = join.version, tries = 0; tries < 5; tries++) {
      const w = await fetch(new URL(weightsPath(runId, join.run.epoch, v), url));
      if (w.status === 200) return (await w.arrayBuffer()).byteLength === paramCount * 4;
      const now = goneVersion(await w.arrayBuffer());
      if (w.status !== 404 || now === undefined) return false;
      v = now;
    }
    return false;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

/** resolves when cond() holds (polling every 20 ms); false after ms */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

export const tallyInto = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};
