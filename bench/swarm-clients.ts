// Child process of the swarm benchmark (bench/swarm.ts): `workers` simulated workers (bench/swarm-sim.ts) sharing one
// process and one random gradient. They join one at a time (each join carries the weights), say so, and on 'go'
// lease and submit as fast as the coordinator lets them until 'stop'.
//
// IPC: parent → {type:'start', url, runId, workers, seed}, {type:'go'}, {type:'stop'};
// child → {type:'joined', workers}, {type:'stopped', stats, cpuMs, wallMs}, {type:'error', message}: cpuMs, wallMs from
// 'go' to 'stop' (the clients share the machine's cores with the coordinator: what they take, it cannot have).
import { randomGradient, SimWorker, type SimStats } from './swarm-sim.ts';

export interface ClientsStart {
  type: 'start';
  url: string;
  runId: string;
  workers: number;
  seed: number;
  /** names the workers sim-<first>, sim-<first+1>, ... */
  first: number;
}

const send = (m: unknown) => process.send!(m);

let sims: SimWorker[] = [];
let stopping = false;
let loops: Promise<void>[] = [];
let grads: Float32Array<ArrayBuffer> | undefined;
let cpu0 = process.cpuUsage();
let t0 = 0;

async function start(m: ClientsStart): Promise<void> {
  for (let i = 0; i < m.workers; i++) {
    const w = await SimWorker.join(m.url, { runId: m.runId, name: `sim-${m.first + i}` });
    grads ??= randomGradient(w.paramCount, m.seed);
    sims.push(w);
  }
  send({ type: 'joined', workers: sims.length });
}

function go(): void {
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  loops = sims.map((w) =>
    w.run(grads!, () => stopping).catch((e: Error) => {
      if (!stopping) send({ type: 'error', message: `${w.workerId}: ${e.message}` });
    }),
  );
}

async function stop(): Promise<void> {
  stopping = true;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  for (const w of sims) w.close();
  await Promise.race([Promise.allSettled(loops), new Promise((ok) => setTimeout(ok, 2000))]);
  const stats: SimStats = { accepted: 0, evals: 0, waits: 0, gradBytes: 0, lost: 0, weightBytes: 0, fetchMs: [] };
  for (const { stats: w } of sims) {
    for (const k of ['accepted', 'evals', 'waits', 'gradBytes', 'lost', 'weightBytes'] as const) stats[k] += w[k];
    stats.fetchMs.push(...w.fetchMs);
  }
  send({ type: 'stopped', stats, cpuMs: (cpu.user + cpu.system) / 1000, wallMs });
  sims = [];
  process.disconnect?.();
}

process.on('message', (raw) => {
  const m = raw as ClientsStart | { type: 'go' } | { type: 'stop' };
  const fail = (e: Error) => send({ type: 'error', message: e.stack ?? e.message });
  if (m.type === 'start') void start(m).catch(fail);
  else if (m.type === 'go') go();
  else if (m.type === 'stop') void stop().catch(fail);
});
process.on('disconnect', () => process.exit(0));
// the bench kills a client that has not exited after 'stop': exit properly, so that --cpu-prof writes its profile
process.on('SIGTERM', () => process.exit(0));
