// `gradswarm bench swarm`: the coordinator under simulated workers, and the default run under real volunteer pages.
//
// Simulated part: for each model size (gpt of ~1 M and ~10 M parameters) and worker count (1, 4, 16, 64), a real
// Coordinator runs alone in a child process (bench/swarm-coordinator.ts: its own memory and event loop, probes on
// its frames and run events) and the simulated workers (bench/swarm-sim.ts: socket.io-client, msgpack, the
// protocol by hand, one random gradient) in one or two other processes (bench/swarm-clients.ts), on loopback.
// target_batch_size = batch_size × workers, one batch per lease: each worker gets one lease per step. Reported per
// configuration: gradient ingest (gradient bytes received / wall time across the measured steps), the per-step
// overhead (the gradient frame that completes a step → the new weights published: decode, check and sum of that
// gradient, clip + AdamW, the copy served at GET weights/… and the 'version' notice to every socket), the workers'
// downloads of the weights (notice → body received), steps/s, the coordinator's CPU time and its peak resident memory.
//
// Volunteers part (bench/swarm-volunteers.ts): samples/s of the default run with 1 and 2 headless Chromium volunteers.
//
// Prints each row as it finishes and writes the "Swarm: coordinator ingest and overhead" section of bench/RESULTS.md,
// with the rows of the section it replaces beside the new ones (before → after) where both measured a configuration.
// GRADSWARM_BENCH_CPU_PROF=<dir> runs each coordinator child under node --cpu-prof, writing its profile there;
// GRADSWARM_BENCH_CLIENTS_PROF=<dir> does the same for the simulated workers' processes; GRADSWARM_BENCH_NODE_ARGS
// adds node options to the coordinator child (e.g. --trace-gc); GRADSWARM_BENCH_INGEST_BUDGET sets its
// ingest gate's budget in bytes (Infinity: no gate).
import { bundleForNode } from '../client/host/bundle.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadCorpus } from '../coordinator/data/corpus.ts';
import { CharTokenizer } from '../shared/data/tokenizer.ts';
import { parseRunConfig, type RunConfig } from '../shared/train/run-config.ts';
import { SWARM_HEADING, writeSection } from './results-file.ts';
import type { ClientsStart } from './swarm-clients.ts';
import type { MeasureRequest, MeasureResult, StepSample } from './swarm-coordinator.ts';
import type { SimStats } from './swarm-sim.ts';
import { measureVolunteers, type VolunteerRow } from './swarm-volunteers.ts';

export interface SwarmBenchOptions {
  /** parts to run: 1M, 10M (a simulated size, every worker count), size:workers (1M:16), volunteers (default: all) */
  only?: string[];
  quick?: boolean;
  /** markdown report path (default bench/RESULTS.md) */
  out?: string;
}

/** gpt shapes whose flat layout holds about 1 M and 10 M parameters on Moby-Dick's 89 symbols */
const SIZES = {
  '1M': { model: 'gpt', n_layer: 4, n_head: 4, n_embd: 144, block_size: 64 },
  '10M': { model: 'gpt', n_layer: 8, n_head: 8, n_embd: 320, block_size: 64 },
} as const;
type Size = keyof typeof SIZES;
const PARTS = [...(Object.keys(SIZES) as Size[]), 'volunteers'];

/** steps and seconds per configuration: warm-up steps, then at least min and at most max of either */
const PLAN = {
  full: {
    workers: [1, 4, 16, 64],
    '1M': { warmupSteps: 3, minSteps: 10, maxSteps: 500, minSeconds: 6, maxSeconds: 12 },
    '10M': { warmupSteps: 2, minSteps: 4, maxSteps: 100, minSeconds: 6, maxSeconds: 25 },
    volunteerSeconds: 60,
  },
  quick: {
    workers: [1, 16, 64],
    '1M': { warmupSteps: 2, minSteps: 5, maxSteps: 200, minSeconds: 2, maxSeconds: 5 },
    '10M': { warmupSteps: 1, minSteps: 2, maxSteps: 20, minSeconds: 2, maxSeconds: 10 },
    volunteerSeconds: 20,
  },
};

/** the issue's targets */
const TARGET = { ingestMBps: 500, overheadMs: 50, at: { size: '1M' as Size, workers: 16 }, memoryRatio: 6, memAt: { size: '10M' as Size, workers: 64 } };

interface Row {
  size: Size;
  workers: number;
  clientProcs: number;
  result?: MeasureResult;
  clients?: SimStats;
  /** cores the client processes used while running (CPU time / wall time, summed over the processes) */
  clientsCpu?: number;
  error?: string;
}

const MB = 1e6;
/** the overhead's parts, a column of the table */
const BREAKDOWN = 'last submit · clip+AdamW · publish (p50 ms)';
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const quantile = (a: number[], q: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const max = (a: number[]) => a.reduce((m, x) => Math.max(m, x), -Infinity);
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

export function benchRunConfig(size: Size, workers: number): RunConfig {
  return parseRunConfig(
    {
      model: SIZES[size],
      data: { corpus: 'moby-dick', batch_size: 16, block_size: 64 },
      optim: { lr: 1e-3, min_lr: 1e-4, warmup_iters: 10, lr_decay_iters: 100_000, weight_decay: 0.1, grad_clip: 1.0 },
      train: { max_steps: 1_000_000, eval_interval: 0, checkpoint_interval: 0, seed: 1 },
      swarm: { target_batch_size: 16 * workers, batches_per_lease: 1, lease_timeout_s: 3600, max_staleness: 1 },
    },
    { vocabSize: (d) => CharTokenizer.fromText(loadCorpus(d.corpus).text).size },
  );
}

/** bundles the two child entries (the CLI itself is a bundle: a child cannot load .ts) */
async function bundleChildren(root: string): Promise<{ coordinator: string; clients: string }> {
  const outdir = join(root, 'node_modules', '.cache', 'gradswarm', 'bench-swarm');
  const out = await bundleForNode(root, { coordinator: join(root, 'bench', 'swarm-coordinator.ts'), clients: join(root, 'bench', 'swarm-clients.ts') }, outdir);
  return { coordinator: out.coordinator, clients: out.clients };
}

/** the next IPC message of `type` from a child (an 'error' message or an exit rejects) */
function next<T>(child: ChildProcess, type: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise((ok, fail) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      fail(new Error(`${what}: no '${type}' within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    const onMessage = (m: { type: string; message?: string }) => {
      if (m.type === type) {
        done();
        ok(m as T);
      } else if (m.type === 'error') {
        done();
        fail(new Error(`${what}: ${m.message}`));
      }
    };
    const onExit = (code: number | null, sig: string | null) => {
      done();
      fail(new Error(`${what}: exited (${sig ?? code}) before '${type}'`));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function measureConfig(entries: { coordinator: string; clients: string }, size: Size, workers: number, quick: boolean): Promise<Row> {
  const plan = PLAN[quick ? 'quick' : 'full'][size];
  const clientProcs = workers >= 16 ? 2 : 1;
  const row: Row = { size, workers, clientProcs };
  const prof = process.env.GRADSWARM_BENCH_CPU_PROF;
  const nodeArgs = process.env.GRADSWARM_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const coord = fork(entries.coordinator, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), ...nodeArgs] });
  const clients: ChildProcess[] = [];
  try {
    const ready = await next<{ url: string }>(coord, 'ready', 60_000, 'coordinator');
    const req: MeasureRequest = { type: 'run', config: benchRunConfig(size, workers), ...plan };
    const added = next<{ runId: string; paramCount: number }>(coord, 'added', 60_000, 'coordinator');
    coord.send(req);
    const { runId } = await added;
    for (let p = 0, first = 0; p < clientProcs; p++) {
      const n = Math.floor(workers / clientProcs) + (p < workers % clientProcs ? 1 : 0);
      const cprof = process.env.GRADSWARM_BENCH_CLIENTS_PROF;
      const c = fork(entries.clients, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: cprof ? ['--cpu-prof', '--cpu-prof-dir', cprof] : [] });
      clients.push(c);
      const start: ClientsStart = { type: 'start', url: ready.url, runId, workers: n, seed: 1 + p, first };
      c.send(start);
      first += n;
    }
    await Promise.all(clients.map((c, p) => next(c, 'joined', 300_000, `client process ${p + 1}`)));
    // a client's loop failing (refused, timed out) fails the row, as the coordinator's result would never come
    const result = next<{ result: MeasureResult }>(coord, 'result', (plan.maxSeconds + 120) * 1000, 'coordinator');
    const failures = clients.map((c, p) => next<never>(c, 'never', 24 * 3600_000, `client process ${p + 1}`));
    for (const c of clients) c.send({ type: 'go' });
    row.result = (await Promise.race([result, ...failures])).result;
    const stopped = clients.map((c, p) => next<{ stats: SimStats; cpuMs: number; wallMs: number }>(c, 'stopped', 30_000, `client process ${p + 1}`));
    for (const c of clients) c.send({ type: 'stop' });
    for (const f of failures) f.catch(() => {});
    const stats = await Promise.all(stopped);
    // the client processes' CPU share (cores) over their go → stop window
    row.clientsCpu = stats.reduce((a, s) => a + s.cpuMs / Math.max(1, s.wallMs), 0);
    row.clients = stats.reduce<SimStats>(
      (a, { stats: s }) => ({
        accepted: a.accepted + s.accepted,
        evals: a.evals + s.evals,
        waits: a.waits + s.waits,
        gradBytes: a.gradBytes + s.gradBytes,
        lost: a.lost + s.lost,
        weightBytes: a.weightBytes + s.weightBytes,
        fetchMs: [...a.fetchMs, ...s.fetchMs],
      }),
      { accepted: 0, evals: 0, waits: 0, gradBytes: 0, lost: 0, weightBytes: 0, fetchMs: [] },
    );
  } catch (e) {
    row.error = (e as Error).message;
  } finally {
    for (const c of clients) if (c.exitCode === null) c.kill('SIGTERM');
    if (coord.connected) coord.disconnect();
    await new Promise<void>((ok) => {
      if (coord.exitCode !== null) return ok();
      const t = setTimeout(() => coord.kill('SIGKILL'), 10_000);
      coord.once('exit', () => {
        clearTimeout(t);
        ok();
      });
    });
  }
  return row;
}

interface Figures {
  steps: number;
  stepsPerSec: number;
  ingestMBps: number;
  /** gradient MB per second of coordinator CPU time */
  ingestPerCpu: number;
  cpuShare: number;
  overhead: { p50: number; max: number };
  close: number;
  aggregate: number;
  /** the copy of the weights served over HTTP and the 'version' notice to every socket */
  publish: number;
  /** the workers' downloads of the weights: notice → body received, median and 90th percentile (ms) */
  download: { p50: number; p90: number };
  modelBytes: number;
  ratio: number;
}

function figures(r: MeasureResult, clients?: SimStats): Figures {
  const s = r.steps;
  const secs = r.wallMs / 1000;
  const modelBytes = r.paramCount * 4;
  const p50 = (k: keyof StepSample) => median(s.map((x) => x[k]));
  return {
    steps: s.length,
    stepsPerSec: s.length / secs,
    ingestMBps: r.gradBytes / MB / secs,
    ingestPerCpu: r.gradBytes / MB / (r.cpuMs / 1000),
    cpuShare: r.cpuMs / r.wallMs,
    overhead: { p50: p50('overheadMs'), max: max(s.map((x) => x.overheadMs)) },
    close: p50('closeMs') - p50('aggregateMs'),
    aggregate: p50('aggregateMs'),
    publish: p50('publishMs'),
    download: { p50: median(clients?.fetchMs ?? []), p90: quantile(clients?.fetchMs ?? [], 0.9) },
    modelBytes,
    ratio: (r.rssPeak - r.rssIdle) / modelBytes,
  };
}

function printRow(row: Row): void {
  const tag = `${row.size} × ${row.workers}`;
  if (!row.result) return console.log(`  ${tag}: failed: ${row.error}`);
  const f = figures(row.result, row.clients);
  console.log(
    `  ${tag}: ${fmt(f.stepsPerSec, 2)} steps/s, ingest ${fmt(f.ingestMBps, 0)} MB/s (${fmt(f.ingestPerCpu, 0)} MB per coordinator CPU-s), ` +
      `overhead p50 ${fmt(f.overhead.p50)} ms (max ${fmt(f.overhead.max)}: last submit ${fmt(f.close)} + clip/AdamW ${fmt(f.aggregate)} + publish ${fmt(f.publish)}), ` +
      `weights download p50 ${fmt(f.download.p50)} ms (p90 ${fmt(f.download.p90)}), answers lost to backup copies ${row.clients?.lost ?? '?'} of ${(row.clients?.accepted ?? 0) + (row.clients?.lost ?? 0)}, ` +
      `coordinator CPU ${fmt(f.cpuShare * 100, 0)} %, simulated workers' CPU ${fmt((row.clientsCpu ?? NaN) * 100, 0)} %, peak RSS ${mib(row.result.rssPeak)} = idle ${mib(row.result.rssIdle)} + ${fmt(f.ratio)} × model ` +
      `(the highest 20 ms sample: RSS ${mib(row.result.atPeak.rss)}, JS heap ${mib(row.result.atPeak.heapUsed)}, ArrayBuffers ${mib(row.result.atPeak.arrayBuffers)} of which ${mib(row.result.atPeak.pooledBytes)} pooled, ` +
      `in model-sized arrays ${fmt(row.result.atPeak.modelArrays, 2)} × model) ` +
      `(at the end: RSS ${mib(row.result.rssEnd)}, JS heap ${mib(row.result.heapUsedEnd)}, ArrayBuffers ${mib(row.result.arrayBuffersEnd)} of which ${mib(row.result.buffers.pooledBytes)} ` +
      `pooled gradient buffers; ${row.result.buffers.reused} of ${row.result.buffers.taken} gradient buffers recycled; ${f.steps} steps; ` +
      `uploads paused by the ingest gate ${row.result.gatePaused}, let in after waiting ${row.result.gateOverdue}; ` +
      `scavenges asked for ${row.result.youngGcs < 0 ? 'none (no --expose-gc)' : row.result.youngGcs})`,
  );
}

interface Verdict {
  what: string;
  value: string;
  met: boolean | undefined;
}

function verdicts(rows: Row[]): Verdict[] {
  const at = rows.find((r) => r.size === TARGET.at.size && r.workers === TARGET.at.workers);
  const mem = rows.find((r) => r.size === TARGET.memAt.size && r.workers === TARGET.memAt.workers);
  const fa = at?.result && figures(at.result, at.clients);
  const fm = mem?.result && figures(mem.result, mem.clients);
  // peak − idle = (model-sized arrays at the peak) × model + the rest, which does not grow with the model
  const arrays = mem?.result?.atPeak.modelArrays;
  const rest = fm && mem?.result && arrays !== undefined ? mem.result.rssPeak - mem.result.rssIdle - arrays * fm.modelBytes : undefined;
  return [
    {
      what: `ingest ≥ ${TARGET.ingestMBps} MB/s at 1M × 16 (wall clock)`,
      value: fa ? `${fmt(fa.ingestMBps, 0)} MB/s (${fmt(fa.ingestPerCpu, 0)} MB per coordinator CPU-s)` : 'not run',
      met: fa ? fa.ingestMBps >= TARGET.ingestMBps : undefined,
    },
    {
      what: `overhead ≤ ${TARGET.overheadMs} ms per step at 1M × 16 (median: last gradient in → new weights published)`,
      value: fa ? `${fmt(fa.overhead.p50)} ms (max ${fmt(fa.overhead.max)}; then the ${TARGET.at.workers} workers' downloads of the weights, p50 ${fmt(fa.download.p50)} ms each, p90 ${fmt(fa.download.p90)})` : 'not run',
      met: fa ? fa.overhead.p50 <= TARGET.overheadMs : undefined,
    },
    {
      what: `peak RSS at ${TARGET.memAt.size} × ${TARGET.memAt.workers} under ~${TARGET.memoryRatio} × the model plus a constant (peak − idle = the model-sized arrays resident at the peak + the rest)`,
      value:
        fm && mem?.result
          ? `${mib(mem.result.rssPeak)} = idle ${mib(mem.result.rssIdle)} + ${fmt(fm.ratio)} × ${mib(fm.modelBytes)}` +
            (rest !== undefined ? ` = idle + ${fmt(arrays!, 2)} × model in model-sized arrays + ${mib(rest)}` : '')
          : 'not run',
      met: arrays !== undefined && rest !== undefined ? arrays <= TARGET.memoryRatio : undefined,
    },
  ];
}

const said = (v: Verdict) => `${v.what}: ${v.value}: ${v.met === undefined ? 'not measured' : v.met ? 'met' : 'MISSED'}`;

/** the table of a report's swarm section: its date and each row's cells by column name, keyed "1M × 16" */
interface Previous {
  date: string;
  load: string;
  rows: Map<string, Record<string, string>>;
}

/** the swarm section this run will replace, if the report has one with a table */
function previousReport(path: string): Previous | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(`${SWARM_HEADING}\n`);
  if (at < 0) return undefined;
  const lines = text.slice(at).split('\n');
  const end = lines.findIndex((l, i) => i > 0 && l.startsWith('## '));
  const section = end > 0 ? lines.slice(0, end) : lines;
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  const header = section.find((l) => l.startsWith('| model | workers |'));
  if (!header) return undefined;
  const names = cells(header);
  const rows = new Map<string, Record<string, string>>();
  // the main table only: from its header to the first line that is not a table row (the before → after table follows)
  const from = section.indexOf(header);
  const to = section.findIndex((l, i) => i > from && !l.startsWith('|'));
  for (const l of section.slice(from, to < 0 ? undefined : to)) {
    if (!/^\| (1M|10M) \| \d+ \| \d/.test(l)) continue;
    const c = cells(l);
    rows.set(`${c[0]} × ${c[1]}`, Object.fromEntries(names.map((n, i) => [n, c[i]])));
  }
  const date = /^- Date: (.*)$/m.exec(section.join('\n'))?.[1] ?? '?';
  const load = /load average ([^(]*?) \(/m.exec(section.join('\n'))?.[1] ?? '?';
  return { date, load, rows };
}

/** the highest-RSS sample's model-sized arrays (in models) + the rest of peak − idle; – where not taken (models < 32 MiB) */
function arraysAndRest(r: MeasureResult, modelBytes: number): string {
  const a = r.atPeak.modelArrays;
  return Number.isFinite(a) ? `${fmt(a, 2)} × + ${mib(r.rssPeak - r.rssIdle - a * modelBytes)}` : '–';
}

function markdown(
  rows: Row[],
  volunteers: VolunteerRow[] | { error: string } | undefined,
  m: { started: Date; cpus: string; node: string; load: string; quick: boolean; command: string; previous?: Previous },
): string {
  const L: string[] = [SWARM_HEADING, '', `Produced by \`${m.command}\` (bench/swarm.ts); do not edit by hand.`, ''];
  L.push(`- Date: ${m.started.toISOString()}`, `- Machine: ${m.cpus}, Node ${m.node}; load average ${m.load} (other jobs shared the cores)`);
  L.push(
    '- Simulated workers: real socket.io-clients with our frame parser (shared/codec.ts) speaking the protocol (hello, join, lease, submit with a random',
    '  Float32Array gradient of the model\'s size), in 1 or 2 client processes, against a Coordinator alone in a child process, on loopback.',
    '  gpt models on Moby-Dick: 1M = 4 layers × 144 wide (1,025,136 parameters), 10M = 8 layers × 320 wide (9,913,280); B 16, T 64,',
    '  target_batch_size 16 × workers and one batch per lease (one lease per worker per step), no eval, no checkpoints. A worker told to wait',
    '  leases again when the next weights arrive (the real loop sleeps the coordinator\'s hint, 100 ms + 50 ms per lease out). The',
    '  per-connection message limit (50/s) is lifted: one fast worker on the 1M model leases and submits more often than that. The workers',
    '  spend as little CPU as the protocol lets them, as they share the coordinator\'s cores: zero-masked websocket frames (the coordinator',
    '  still unmasks them, as a browser\'s) and a minimal HTTP GET of the weights into one reused buffer (bench/swarm-sim.ts).',
    '- Ingest: gradient bytes received by the coordinator / wall time of the measured steps (MB = 10⁶ bytes); "per CPU-s": the same bytes per',
    '  second of coordinator CPU time (the clients share the 2 cores, so wall-clock rates are lower than the coordinator alone could do).',
    '  "Simulated workers\' CPU": the client processes\' CPU time over their running time, in cores (100 % = one core); the coordinator and',
    '  they share the machine\'s cores, so on 2 cores their sum caps near 200 %.',
    '- Overhead: the last chunk of the gradient that completes a step (as ws delivered it) → the new weights published, median and max over the',
    '  steps; split into the last submit (socket.io decode, validation, one pass for the finite check and the norm screen, the sum), clip + AdamW',
    '  (StepRecord.aggregateMs), and publish: the run\'s new weights array handed to GET weights/<run>/<epoch>/<version>.bin (no copy) and the',
    '  few-byte \'version\' notice to every socket. Each worker then downloads the weights over HTTP (started on the notice, overlapping its next',
    '  lease request): "download" is notice → body received at the worker, over all workers and steps. The coordinator\'s side of those',
    '  downloads (workers × model bytes per step, copied into the sockets by the kernel) is in its CPU time and the per-CPU-s column.',
    '- Uploads paused: gradients that waited for the coordinator\'s ingest gate (coordinator/swarm/ingest-gate.ts, 64 MiB by default).',
    '- Memory: the coordinator\'s peak RSS while measuring (VmHWM, reset after the warm-up); idle = its RSS before the run was added;',
    '  ratio = (peak − idle) / model bytes. What grows with the model: the run holds 4 × model (the weights, stepped in place once their',
    '  downloads are over, with a second copy only while one is still going out at step time; the gradient sum; AdamW\'s two moments) and',
    '  each gradient in flight 1 × (a head, then 1 MiB chunks copied into a recycled array of its exact size; shared/codec.ts): 5 × at',
    '  10M × 64, where the gate lets one upload in at a time. The 10M rows measure them at the highest-RSS sample: the resident bytes of',
    '  the process\'s anonymous memory mappings of at least the model\'s size (/proc/self/smaps; arrays this large are always mapped on',
    '  their own), in models ("of which model-sized arrays + the rest"). What does not grow with the model: the idle process, the',
    '  ingest budget\'s uploads in flight (64 MiB), per-connection buffers, the malloc heap and V8\'s pages, and the buffers of socket',
    '  reads and ws frames, dead once their chunk is copied: the coordinator frees them with a scavenge every 8 MiB of chunks',
    '  (coordinator/swarm/young-gc.ts; "scavenges" in the log), before V8\'s 64 MB external-memory trigger would run a full collection.',
    '',
  );
  if (!rows.length) L.push('Simulated workers: not run (`--only` left them out).');
  else L.push(
    `| model | workers | steps | steps/s | ingest MB/s | MB per coordinator CPU-s | overhead p50 (max) ms | ${BREAKDOWN} | weights download p50 (p90) ms | coordinator CPU | simulated workers' CPU | peak RSS | (peak − idle) / model | of which model-sized arrays + the rest | uploads paused (let in after 10 s) |`,
  );
  if (rows.length) L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    if (!r.result) {
      L.push(`| ${r.size} | ${r.workers} | failed: ${r.error?.replace(/\|/g, '/').replace(/\n/g, ' ').slice(0, 200)} | | | | | | | | | | | | |`);
      continue;
    }
    const f = figures(r.result, r.clients);
    L.push(
      `| ${r.size} | ${r.workers} | ${f.steps} | ${fmt(f.stepsPerSec, 2)} | ${fmt(f.ingestMBps, 0)} | ${fmt(f.ingestPerCpu, 0)} | ${fmt(f.overhead.p50)} (${fmt(f.overhead.max)}) | ` +
        `${fmt(f.close)} · ${fmt(f.aggregate)} · ${fmt(f.publish)} | ${fmt(f.download.p50)} (${fmt(f.download.p90)}) | ${fmt(f.cpuShare * 100, 0)} % | ${fmt((r.clientsCpu ?? NaN) * 100, 0)} % | ${mib(r.result.rssPeak)} | ${fmt(f.ratio)} | ${arraysAndRest(r.result, f.modelBytes)} | ${r.result.gatePaused} (${r.result.gateOverdue}) |`,
    );
  }
  const before = m.previous && rows.filter((r) => r.result && m.previous!.rows.has(`${r.size} × ${r.workers}`));
  if (m.previous && before?.length) {
    L.push('', `### Before → after: the report this one replaced (${m.previous.date}, load average ${m.previous.load}) → this run`, '');
    L.push('Both on the same kind of shared machine; wall-clock figures move with the other jobs\' load, so compare the per-CPU-s column too.', '');
    L.push(`| model | workers | ingest MB/s | MB per coordinator CPU-s | overhead p50 (max) ms | ${BREAKDOWN} (before: its columns then) | (peak − idle) / model |`);
    L.push('| --- | ---: | ---: | ---: | ---: | --- | ---: |');
    for (const r of before) {
      const p = m.previous.rows.get(`${r.size} × ${r.workers}`)!;
      const f = figures(r.result!, r.clients);
      const was = (k: string) => p[k] ?? '?';
      const breakdownWas = p[BREAKDOWN] ?? Object.entries(p).find(([k]) => k.startsWith('last submit'))?.[1] ?? '?';
      L.push(
        `| ${r.size} | ${r.workers} | ${was('ingest MB/s')} → ${fmt(f.ingestMBps, 0)} | ${was('MB per coordinator CPU-s')} → ${fmt(f.ingestPerCpu, 0)} | ` +
          `${was('overhead p50 (max) ms')} → ${fmt(f.overhead.p50)} (${fmt(f.overhead.max)}) | ${breakdownWas} → ` +
          `${fmt(f.close)} · ${fmt(f.aggregate)} · ${fmt(f.publish)} | ${was('(peak − idle) / model')} → ${fmt(f.ratio)} |`,
      );
    }
  }
  L.push('', '### Targets', '');
  for (const v of verdicts(rows)) L.push(`- ${said(v)}`);
  L.push('', '### Real volunteers: the default run (swarm-gpt-char)', '');
  if (!volunteers) L.push('Not run (`--only` left it out).');
  else if ('error' in volunteers) L.push(`Failed: ${volunteers.error}`);
  else {
    const v0 = volunteers[0];
    if (v0) {
      L.push(
        `${(v0.params / 1e6).toFixed(2)} M-parameter gpt, B ${v0.B}, T ${v0.T}, target batch ${v0.targetBatch} rows; each volunteer a volunteer page in its own headless`,
        'Chromium on SwiftShader (WebGPU on the CPU). Samples/s = rows applied per second from /api/runs/:id, after every volunteer had a',
        'gradient applied. **On this 2-core machine the two SwiftShader volunteers share the same two cores (with the coordinator and',
        'whatever else runs), so the second volunteer cannot add compute: this measures contention, not how a swarm of real GPUs scales.**',
        '',
        '| volunteers | samples/s | steps | window | per volunteer samples/s |',
        '| ---: | ---: | ---: | ---: | --- |',
      );
      for (const v of volunteers) L.push(`| ${v.volunteers} | ${fmt(v.samplesPerSec)} | ${v.steps} | ${fmt(v.seconds, 0)} s | ${v.perVolunteer.map((x) => fmt(x)).join(', ')} |`);
    }
  }
  return L.join('\n');
}

export async function runSwarmBench(root: string, o: SwarmBenchOptions = {}): Promise<void> {
  const only = o.only ?? PARTS;
  const quick = !!o.quick;
  const plan = PLAN[quick ? 'quick' : 'full'];
  // a part is a size (every worker count), size:workers (one configuration) or 'volunteers'
  const configs: [Size, number][] = [];
  for (const p of only) {
    const [size, w] = p.split(':') as [Size, string | undefined];
    const workers = w === undefined ? plan.workers : [Number(w)];
    if (!(size in SIZES) && p !== 'volunteers') throw new Error(`--only: unknown part '${p}' (swarm parts: ${PARTS.join(', ')}, or size:workers such as 1M:16)`);
    if (!workers.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--only: '${p}': workers must be a whole number >= 1`);
    if (size in SIZES) for (const n of workers) configs.push([size, n]);
  }
  const out = o.out ?? join(root, 'bench', 'RESULTS.md');
  const started = new Date();
  const cpu = cpus();
  const load0 = loadavg()[0];
  console.log(`gradswarm swarm benchmark on ${cpu.length} × ${cpu[0]?.model ?? '?'}, Node ${process.version}${quick ? ' (quick)' : ''}; load average ${load0.toFixed(1)}`);
  const entries = await bundleChildren(root);
  const rows: Row[] = [];
  for (const [size, workers] of configs) {
    const row = await measureConfig(entries, size, workers, quick);
    printRow(row);
    rows.push(row);
  }
  let volunteers: VolunteerRow[] | { error: string } | undefined;
  if (only.includes('volunteers')) {
    console.log(`real volunteers on the default run, ${plan.volunteerSeconds} s each:`);
    volunteers = await measureVolunteers(root, { seconds: plan.volunteerSeconds, log: (l) => console.log(`  ${l}`) }).catch((e: Error) => ({ error: e.message }));
    if ('error' in volunteers) console.log(`  failed: ${volunteers.error}`);
  }
  for (const v of verdicts(rows)) if (v.met !== undefined) console.log(said(v));
  const args = [quick && '--quick', o.only && `--only ${o.only.join(',')}`].filter(Boolean).join(' ');
  const load = `${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}`;
  const previous = previousReport(out);
  writeSection(out, SWARM_HEADING, markdown(rows, volunteers, { started, cpus: `${cpu.length} × ${cpu[0]?.model ?? '?'}`, node: process.version, load, quick, command: `npm run bench -- swarm${args ? ` ${args}` : ''}`, previous }));
  console.log(`wrote ${out}`);
}
