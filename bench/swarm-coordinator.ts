// Child process of the swarm benchmark (bench/swarm.ts): a real Coordinator alone in its process, so its memory and
// event loop are its own, with probes that do not touch its code:
//   - every inbound message: a listener put first on each engine.io connection's 'data' (the message as ws assembled
//     it, before socket.io decodes it) notes the time and size; a gradient is a head (shared/codec.ts) and its chunks,
//     and it has arrived with its last chunk;
//   - the run's 'weights' event (after clipping and AdamW), first before and then after the coordinator's own
//     listener has published them (copied for GET weights/… and the 'version' notice handed to every socket).
// Overhead of a step = published − arrival of the gradient frame that closed the step. The workers' downloads of
// the weights that follow are measured by the clients (SimStats.fetchMs) and cost this process CPU in the window. Peak memory: VmHWM of
// /proc/self/status, reset (clear_refs 5) when measuring starts.
//
// Protocol over IPC: parent → {type:'run', config, warmupSteps, minSteps, maxSteps, minSeconds, maxSeconds};
// child → {type:'ready', url, rss}, {type:'added', runId, paramCount, rss}, {type:'result', result}, {type:'error'}.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../coordinator/swarm/server.ts';
import { headChunks } from '../shared/codec.ts';
import type { StepRecord } from '../coordinator/swarm/run.ts';
import type { RunConfig } from '../shared/train/run-config.ts';

export interface MeasureRequest {
  type: 'run';
  config: RunConfig;
  /** steps before measuring (the first includes every worker's first lease) */
  warmupSteps: number;
  /** measure at least minSteps and minSeconds, at most maxSteps or maxSeconds (whichever comes first) */
  minSteps: number;
  maxSteps: number;
  minSeconds: number;
  maxSeconds: number;
}

export interface StepSample {
  step: number;
  /** last gradient frame → new weights published (served and announced) */
  overheadMs: number;
  /** last gradient frame → the step closed: socket.io decode, validation, finite check and sum, clip + AdamW */
  closeMs: number;
  /** of closeMs: clip + AdamW (StepRecord.aggregateMs) */
  aggregateMs: number;
  /** step closed → published: the copy of the weights served over HTTP and the 'version' notice to every socket */
  publishMs: number;
  /** the step's wall time (StepRecord.ms: first lease of the step → close) */
  stepMs: number;
}

export interface MeasureResult {
  paramCount: number;
  steps: StepSample[];
  /** wall ms from the broadcast that ended the warm-up to the last measured broadcast */
  wallMs: number;
  /** gradient frames and their bytes received in that window */
  gradFrames: number;
  gradBytes: number;
  /** every inbound frame's bytes in the window */
  inBytes: number;
  /** coordinator CPU time (user + system) in the window */
  cpuMs: number;
  /** RSS before the run was added (Node, modules, socket.io), after it, at the end, and the peak while measuring */
  rssIdle: number;
  rssAdded: number;
  rssEnd: number;
  rssPeak: number;
  /** peak RSS from the start of the process to the start of measuring (joins: one weights copy per worker) */
  rssPeakBefore: number;
  heapUsedEnd: number;
  arrayBuffersEnd: number;
  /**
   * the sample (every 20 ms while measuring) with the highest RSS: what it held then, and its model-sized arrays in
   * models: the resident bytes of anonymous memory mappings of at least the model's size (/proc/self/smaps; arrays this
   * large are always mmap'd by malloc, a wasm memory is a mapping of its own, and the kernel merges adjacent ones;
   * NaN for models under MMAPPED)
   */
  atPeak: { rss: number; heapUsed: number; arrayBuffers: number; pooledBytes: number; modelArrays: number };
  /** the coordinator's ingest gate while measuring: uploads paused, and let in over the budget after waiting */
  gatePaused: number;
  gateOverdue: number;
  /** scavenges the coordinator asked for while measuring (coordinator/swarm/young-gc.ts), -1 where it cannot */
  youngGcs: number;
  /** gradient buffers handed out while measuring, how many of them recycled, and the bytes waiting in the pool at the end */
  buffers: { taken: number; reused: number; pooledBytes: number };
}

const send = (m: unknown) => process.send!(m);

function hwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** arrays from this size on always get a mapping of their own (glibc's largest mmap threshold): smaller models' arrays
 * may share the malloc heap, so their count is not taken (nor is /proc/self/smaps read at their rows' peaks) */
const MMAPPED = 32 << 20;

/** resident bytes of this process's anonymous mappings of at least `bytes`, in units of `bytes` */
function modelSized(bytes: number): number {
  let n = 0;
  let anon = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) anon = head[1] === '' || head[1] === '[anon]';
    else if (anon && line.startsWith('Rss:')) {
      const rss = Number(/(\d+) kB/.exec(line)![1]) * 1024;
      if (rss >= bytes) n += rss;
    }
  }
  return n / bytes;
}

function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

const frameBytes = (d: unknown): number => (d instanceof Uint8Array ? d.byteLength : d instanceof ArrayBuffer ? d.byteLength : typeof d === 'string' ? d.length : 0);

async function main(): Promise<void> {
  const budget = process.env.GRADSWARM_BENCH_INGEST_BUDGET;
  const coord = new Coordinator({
    port: 0,
    host: '127.0.0.1',
    dataDir: mkdtempSync(join(tmpdir(), 'gradswarm-bench-swarm-')),
    token: 'bench',
    ingestBudgetBytes: budget ? Number(budget) : undefined,
    // a simulated worker of a small model leases and submits faster than the flood limit (50 messages/s per socket)
    rateLimit: { perSecond: 1e6, burst: 1e6, disconnectAfter: 1e9 },
  });
  const url = await coord.listen();
  const rssIdle = process.memoryUsage.rss();
  send({ type: 'ready', url, rss: rssIdle });

  let gradThreshold = Infinity;
  let lastGradAt = 0;
  let measuring = false;
  let gradFrames = 0;
  let gradBytes = 0;
  let inBytes = 0;
  coord.io.engine.on('connection', (conn: { prependListener(e: 'data', f: (d: unknown) => void): void }) => {
    let left = 0;
    let bytes = 0;
    conn.prependListener('data', (d) => {
      const n = frameBytes(d);
      if (measuring) inBytes += n;
      if (left > 0) {
        bytes += n;
        if (--left > 0) return;
        if (bytes >= gradThreshold) {
          lastGradAt = performance.now();
          if (measuring) {
            gradFrames++;
            gradBytes += bytes;
          }
        }
        return;
      }
      const head = d instanceof Uint8Array ? headChunks(d) : undefined;
      if (head) {
        left = head;
        bytes = 0;
      }
    });
  });

  process.on('message', (raw) => {
    const m = raw as MeasureRequest;
    if (m.type !== 'run') return;
    void measure(m).catch((e: Error) => send({ type: 'error', message: e.stack ?? e.message }));
  });

  async function measure(m: MeasureRequest): Promise<void> {
    const run = await coord.addRun(m.config, { id: 'bench' });
    const paramCount = run.layout.size;
    gradThreshold = paramCount * 4;
    const rssAdded = process.memoryUsage.rss();
    send({ type: 'added', runId: run.id, paramCount, rss: rssAdded });
    run.on('error', (e) => send({ type: 'error', message: `run: ${e.message}` }));

    const steps: StepSample[] = [];
    let closedAt = 0;
    let publishedAt = 0;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    let rssPeakBefore = 0;
    let gate0 = { paused: 0, overdue: 0 };
    let pool0 = { taken: 0, reused: 0 };
    let gcs0 = 0;
    let sampler: ReturnType<typeof setInterval> | undefined;
    let atPeak = { rss: 0, heapUsed: 0, arrayBuffers: 0, pooledBytes: 0, modelArrays: 0 };
    // the run emits 'weights' (the coordinator publishes them) and then 'step' (with the record)
    run.prependListener('weights', () => void (closedAt = performance.now()));
    run.on('weights', () => void (publishedAt = performance.now()));
    run.on('step', (rec: StepRecord) => {
      const version = rec.step;
      const t = publishedAt;
      if (version === m.warmupSteps) {
        rssPeakBefore = hwm();
        resetHwm();
        measuring = true;
        sampler = setInterval(() => {
          const u = process.memoryUsage();
          if (u.rss > atPeak.rss) atPeak = { rss: u.rss, heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers, pooledBytes: coord.gradientBuffers.bytes, modelArrays: paramCount * 4 >= MMAPPED ? modelSized(paramCount * 4) : NaN };
        }, 20);
        gate0 = { paused: coord.ingest.paused, overdue: coord.ingest.overdueAdmits };
        pool0 = { taken: coord.gradientBuffers.taken, reused: coord.gradientBuffers.reused };
        gcs0 = coord.youngGc.asked;
        t0 = t;
        cpu0 = process.cpuUsage();
        return;
      }
      if (!measuring) return;
      steps.push({
        step: version,
        overheadMs: t - lastGradAt,
        closeMs: closedAt - lastGradAt,
        aggregateMs: rec.aggregateMs,
        publishMs: t - closedAt,
        stepMs: rec.ms,
      });
      const elapsed = (t - t0) / 1000;
      const enough = steps.length >= m.minSteps && elapsed >= m.minSeconds;
      if (enough || steps.length >= m.maxSteps || elapsed >= m.maxSeconds) {
        measuring = false;
        clearInterval(sampler);
        const cpu = process.cpuUsage(cpu0);
        const mem = process.memoryUsage();
        const result: MeasureResult = {
          paramCount,
          steps,
          wallMs: t - t0,
          gradFrames,
          gradBytes,
          inBytes,
          cpuMs: (cpu.user + cpu.system) / 1000,
          rssIdle,
          rssAdded,
          rssEnd: mem.rss,
          rssPeak: hwm(),
          rssPeakBefore,
          heapUsedEnd: mem.heapUsed,
          arrayBuffersEnd: mem.arrayBuffers,
          atPeak,
          gatePaused: coord.ingest.paused - gate0.paused,
          gateOverdue: coord.ingest.overdueAdmits - gate0.overdue,
          youngGcs: coord.youngGc.available ? coord.youngGc.asked - gcs0 : -1,
          buffers: { taken: coord.gradientBuffers.taken - pool0.taken, reused: coord.gradientBuffers.reused - pool0.reused, pooledBytes: coord.gradientBuffers.bytes },
        };
        run.setStatus('paused', 'benchmark done');
        send({ type: 'result', result });
      }
    });
  }

  process.on('disconnect', () => {
    void coord.close().finally(() => process.exit(0));
  });
}

main().catch((e: Error) => {
  send({ type: 'error', message: e.stack ?? e.message });
  process.exit(1);
});
