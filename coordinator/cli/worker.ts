// `gradswarm worker --coordinator URL`: a headless volunteer on Node, running the same kernels and worker loop as
// the page (client/worker/loop.ts) through Dawn (npm `webgpu`). By default the command supervises: the worker runs
// in a child process, and if that process dies (Dawn can crash the whole process, ../shared/ENVIRONMENT.md; or the
// GPU device is lost) the parent says how it died and starts a fresh one, so a long soak survives by restarting
// cleanly. `--no-supervise` runs the worker in this process. The identity token the coordinator gives (its record
// of this volunteer) is kept in memory, and in --identity-file when given; a supervisor gives its children a file
// of its own, so a restarted worker comes back as the same volunteer.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { Worker, type IdentityStore, type WorkerSocket, type WorkerStatus } from '../../client/worker/loop.ts';
import { parser } from '../../shared/codec.ts';

export interface WorkerFlags {
  coordinator: string;
  name?: string;
  supervise: boolean;
  /** stop after this many seconds (soak tests, benchmarks) */
  seconds?: number;
  quiet?: boolean;
  /** keep the identity token here (read at the start, written when the coordinator gives a new one) */
  identityFile?: string;
}

/** the identity token in a file (mode 0600): missing or unreadable means none yet */
export function fileIdentity(path: string): IdentityStore {
  return {
    load() {
      try {
        return readFileSync(path, 'utf8').trim() || undefined;
      } catch {
        return undefined;
      }
    },
    save(token) {
      try {
        writeFileSync(path, `${token}\n`, { mode: 0o600 });
      } catch (e) {
        console.error(`gradswarm worker: cannot keep the identity token in ${path} (${(e as Error).message}); it lasts while this process runs`);
      }
    },
  };
}

const stamp = () => new Date().toISOString().slice(11, 19);

export async function workerCommand(o: WorkerFlags): Promise<void> {
  let url: URL;
  try {
    url = new URL(o.coordinator);
  } catch {
    throw new Error(`--coordinator: '${o.coordinator}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (o.supervise) return supervise(o);
  await runWorker(url, o);
}

async function supervise(o: WorkerFlags): Promise<void> {
  // the children share one identity: the given file, or one of this supervisor's own (removed when it exits)
  const own = o.identityFile ? undefined : mkdtempSync(join(tmpdir(), 'gradswarm-worker-'));
  const identityFile = o.identityFile ?? join(own!, 'identity');
  const args = [process.argv[1], 'worker', '--coordinator', o.coordinator, '--no-supervise', '--identity-file', identityFile];
  if (o.name) args.push('--name', o.name);
  if (o.quiet) args.push('--quiet');
  try {
    await superviseChildren(o, args);
  } finally {
    if (own) rmSync(own, { recursive: true, force: true });
  }
}

async function superviseChildren(o: WorkerFlags, args: string[]): Promise<void> {
  const deadline = o.seconds ? Date.now() + o.seconds * 1000 : Infinity;
  let restarts = 0;
  let stopping = false;
  let child: ReturnType<typeof spawn> | undefined;
  const stop = (sig: NodeJS.Signals) => {
    stopping = true;
    child?.kill(sig);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const started = Date.now();
    child = spawn(process.execPath, Number.isFinite(left) ? [...args, '--seconds', String(Math.ceil(left / 1000))] : args, { stdio: 'inherit' });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((ok) => child!.once('exit', (c, s) => ok([c, s])));
    if (stopping || code === 0) break;
    restarts++;
    if (Date.now() - started > 10 * 60_000) restarts = 1; // a long healthy stretch resets the backoff
    const wait = Math.min(60, 2 ** Math.min(restarts, 6));
    console.error(
      `[${stamp()}] gradswarm worker: the worker process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} ` +
        `(a GPU driver crash or a lost device ends the process); restarting it in ${wait} s (restart ${restarts})`,
    );
    await new Promise((ok) => setTimeout(ok, wait * 1000));
    if (stopping) break;
  }
}

async function runWorker(url: URL, o: WorkerFlags): Promise<void> {
  const gpu = await openNodeGpu();
  const socket = io(url.href, { parser, transports: ['websocket'], reconnectionDelayMax: 10_000 }) as WorkerSocket;
  let last = '';
  const say = (line: string) => {
    if (!o.quiet) console.log(`[${stamp()}] ${line}`);
  };
  say(`gradswarm worker on ${gpu.adapterName}${gpu.isFallback ? ' (software)' : ''}, coordinator ${url.href}`);
  const onStatus = (s: WorkerStatus) => {
    const line = s.state === 'working' ? `working on ${s.run?.name ?? '?'} (${s.run?.model}), weights v${s.version}` : `${s.state}: ${s.message}`;
    if (line !== last && s.state !== 'working') say(line);
    if (s.state === 'working' && !last.startsWith('working')) say(line);
    last = line;
  };
  const worker = new Worker({
    gpu,
    socket,
    hello: { kind: 'node', name: o.name ?? hostname(), adapter: gpu.adapterName, fallback: gpu.isFallback },
    coordinatorUrl: url,
    onStatus,
    log: process.env.GRADSWARM_DEBUG ? (l) => console.error(l) : undefined,
    identity: o.identityFile ? fileIdentity(o.identityFile) : undefined,
  });
  const report = setInterval(() => {
    const s = worker.status;
    say(`${s.samples} samples in ${s.steps} steps, ${s.samplesPerSec.toFixed(1)} samples/s, ${s.refused} refused`);
  }, 60_000);
  report.unref();
  const stop = () => worker.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const timer = o.seconds ? setTimeout(stop, o.seconds * 1000) : undefined;
  try {
    await worker.run();
  } finally {
    clearTimeout(timer);
    clearInterval(report);
    socket.close();
    gpu.destroy();
  }
  const s = worker.status;
  say(`stopped: ${s.samples} samples in ${s.steps} steps`);
}
