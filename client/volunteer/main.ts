// The volunteer page: checks WebGPU (saying plainly what to do when it is missing), opens the GPU, connects to the
// coordinator that served it and runs the worker loop (client/worker/loop.ts). It shows the GPU, the run and
// model, this volunteer's contribution and the run's loss chart, and offers pause/resume, a GPU share (the
// worker's duty cycle) and pausing while the tab is hidden; those choices are kept in localStorage. Closing the
// tab closes the socket, which releases this volunteer's leases at once.
import { io } from 'socket.io-client';
import { parser } from '../../shared/codec.ts';
import type { Progress } from '../../shared/protocol.ts';
import type { ModelConfig } from '../../shared/models/config.ts';
import { openGpu } from '../runtime/index.ts';
import type { Gpu } from '../runtime/gpu.ts';
import { Worker, type WorkerSocket, type WorkerStatus } from '../worker/loop.ts';
import { LossChart, type RunHistory } from './chart.ts';
import { errorProblem, gpuOpenProblem, lostProblem, webgpuProblem, type Problem } from './problems.ts';
import { pageIdentity } from './identity.ts';
import { loadSettings, saveSettings } from './settings.ts';

/** "Chrome 156 on Linux": how the researcher's console names this volunteer (nothing more identifying) */
function browserName(): string {
  const ua = navigator.userAgent;
  const m = /(Edg|Firefox|Chrome|Version)\/(\d+)/.exec(ua);
  const name = m ? `${m[1] === 'Edg' ? 'Edge' : m[1] === 'Version' ? 'Safari' : m[1]} ${m[2]}` : 'a browser';
  const os = /Windows|Mac OS X|Android|iPhone|iPad|CrOS|Linux/.exec(ua)?.[0].replace('Mac OS X', 'macOS').replace('CrOS', 'ChromeOS');
  return os ? `${name} on ${os}` : name;
}

const $ = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;

function showStatus(state: string, text: string): void {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text;
}

let stopped = false;

/** the problem box replaces the status line (which keeps the state, for tests and styles) */
function showProblem(p: Problem): void {
  stopped = true;
  showStatus(p.state, p.title);
  $('status').hidden = true;
  $('controls').hidden = true;
  $('problem-title').textContent = p.title;
  $('problem-text').textContent = p.text;
  const button = $<HTMLButtonElement>('reload');
  button.hidden = !p.action;
  button.textContent = p.action ?? '';
  $('problem').hidden = false;
}

const sentence = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

function describeModel(m: ModelConfig, params: number): string {
  const shape =
    m.model === 'gpt'
      ? `${m.n_layer} layer${m.n_layer > 1 ? 's' : ''}, ${m.n_head} heads, width ${m.n_embd}, context ${m.block_size} characters`
      : `${m.num_layers} layer${m.num_layers > 1 ? 's' : ''}, hidden size ${m.hidden_size}`;
  return `${m.model.toUpperCase()}: ${formatCount(params)} parameters (${shape})`;
}

/** GET /api/runs/:id/public (coordinator/swarm/server.ts publicRun), the part the page reads */
interface RunDetail extends RunHistory {
  config: { model: ModelConfig };
  step: number;
  maxSteps: number;
  status: Progress['status'];
  loss: number | null;
  workers: number;
}

/** samples per second of wall time over the last 30 s of status updates: drops with the GPU share and to 0 when paused */
class WallRate {
  private points: { t: number; samples: number }[] = [];

  add(samples: number): number | undefined {
    const t = performance.now();
    this.points.push({ t, samples });
    while (this.points.length > 2 && t - this.points[0].t > 30_000) this.points.shift();
    const first = this.points[0];
    return t - first.t < 1000 ? undefined : ((samples - first.samples) * 1000) / (t - first.t);
  }
}

async function main(): Promise<void> {
  $<HTMLButtonElement>('reload').addEventListener('click', () => location.reload());
  const missing = webgpuProblem();
  if (missing) return showProblem(missing);
  let gpu: Gpu;
  try {
    gpu = await openGpu(navigator.gpu);
  } catch (e) {
    return showProblem(gpuOpenProblem((e as Error).message));
  }
  $('work').hidden = false;
  $('gpu').textContent = `${gpu.adapterName}${gpu.isFallback ? ' (software, slow)' : ''}`;

  const settings = loadSettings();
  let userPaused = false;
  const paused = () => userPaused || (settings.pauseWhenHidden && document.visibilityState === 'hidden');

  const chart = new LossChart($('chart'));
  const rate = new WallRate();
  let runId: string | undefined;
  // the newest steps shown: the history snapshot may arrive after newer progress events
  let runStep = -1;
  let valStep = -1;
  const showVal = (step: number, valLoss: number) => {
    if (step < valStep) return;
    valStep = step;
    $('val-loss').textContent = `${valLoss.toFixed(3)} at step ${step}`;
  };
  let last: WorkerStatus | undefined;

  const render = (s: WorkerStatus) => {
    if (stopped) return;
    let text = sentence(s.message);
    if (s.state === 'paused') text = userPaused ? 'Paused. Press Resume to lend your GPU again.' : 'Paused while this tab is hidden.';
    else if (userPaused) text = 'Pausing after the current batch…';
    showStatus(s.state, text);
    $('samples').textContent = s.samples.toLocaleString('en');
    $('steps').textContent = s.steps.toLocaleString('en');
  };

  const onProgress = (p: Progress) => {
    if (p.runId !== runId) return;
    chart.add(p);
    if (p.valLoss !== undefined) showVal(p.step, p.valLoss);
    if (p.step < runStep) return;
    runStep = p.step;
    $('step').textContent = `${p.step} / ${p.maxSteps}${p.status === 'running' ? '' : ` (${p.status})`}`;
    if (p.loss !== undefined) $('loss').textContent = p.loss.toFixed(3);
    $('workers').textContent = String(p.workers);
  };

  // a run joined (or another one): its name and model, and the chart seeded with its history so far
  const joined = async (run: NonNullable<WorkerStatus['run']>) => {
    runId = run.runId;
    runStep = valStep = -1;
    chart.reset();
    $('run').textContent = run.name;
    $('model').textContent = `${run.model.toUpperCase()}: ${formatCount(run.params)} parameters`;
    try {
      const r = await fetch(`/api/runs/${encodeURIComponent(run.runId)}/public`);
      if (!r.ok || runId !== run.runId) return;
      const d = (await r.json()) as RunDetail;
      $('model').textContent = describeModel(d.config.model, run.params);
      chart.seed(d);
      const lastVal = d.valHistory.at(-1);
      if (lastVal) showVal(lastVal.step, lastVal.valLoss);
      onProgress({ runId: run.runId, step: d.step, maxSteps: d.maxSteps, loss: d.loss ?? undefined, tokensPerSec: 0, workers: d.workers, status: d.status });
    } catch {
      // the chart fills from the progress events alone
    }
  };

  const socket = io(location.origin, { parser, transports: ['websocket'] }) as WorkerSocket;
  const worker = new Worker({
    gpu,
    socket,
    hello: { kind: 'browser', adapter: gpu.adapterName, fallback: gpu.isFallback, name: browserName() },
    identity: pageIdentity,
    coordinatorUrl: location.origin,
    duty: () => settings.duty / 100,
    paused,
    onStatus: (s) => {
      last = s;
      if (s.run && s.run.runId !== runId) void joined(s.run);
      const r = rate.add(s.samples);
      $('rate').textContent = r === undefined ? '–' : r.toFixed(r < 10 ? 1 : 0);
      render(s);
    },
    onProgress,
  });
  (window as unknown as { gradswarm: unknown }).gradswarm = { worker, gpu };

  // the controls, set from the stored choices
  const pause = $<HTMLButtonElement>('pause');
  pause.addEventListener('click', () => {
    userPaused = !userPaused;
    pause.textContent = userPaused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(userPaused));
    if (last) render(last);
    worker.poke();
  });
  const duty = $<HTMLInputElement>('duty');
  const dutyValue = $('duty-value');
  duty.value = String(settings.duty);
  dutyValue.textContent = `${settings.duty} %`;
  duty.addEventListener('input', () => {
    settings.duty = Number(duty.value);
    dutyValue.textContent = `${settings.duty} %`;
    saveSettings(settings);
  });
  const hidden = $<HTMLInputElement>('pause-hidden');
  hidden.checked = settings.pauseWhenHidden;
  hidden.addEventListener('change', () => {
    settings.pauseWhenHidden = hidden.checked;
    saveSettings(settings);
    worker.poke();
  });
  document.addEventListener('visibilitychange', () => worker.poke());

  gpu.device.lost.then((info) => {
    showProblem(lostProblem(info.message || info.reason));
    worker.stop();
    socket.close(); // releases the leases now rather than when they time out
  });
  window.addEventListener('pagehide', () => socket.close());
  try {
    await worker.run();
  } catch (e) {
    if (gpu.lost) return; // shown by the device.lost handler
    throw e;
  }
}

main().catch((e) => showProblem(errorProblem((e as Error).message)));
