// The researcher's console (served at /console/): sign in with the admin token (kept in sessionStorage), see every
// run, create one, and follow the selected run live: loss, tokens/s and step-time charts, its volunteers and their
// contribution, pause/resume/stop, its share of volunteers (weight) and a checkpoint download. Data comes from the
// admin API (./api.ts) and the /admin socket.io namespace (msgpack frames, shared/codec.ts), which pushes the run
// summaries, every step, every eval and status changes; the selected run's volunteers are re-read every few seconds.
import { io, type Socket } from 'socket.io-client';
import { parser } from '../../shared/codec.ts';
import { Api, ApiError, Unauthorized, type AdminEvents, type RunDetail, type RunSummary, type StepRow } from './api.ts';
import { LossChart, StepTimeChart, ThroughputChart, TIME_COLOURS } from './charts.ts';
import { createRunForm } from './create-run.ts';
import { $, count, h, loss, ms, rate } from './dom.ts';
import { meanBreakdown } from './step-time.ts';
import { leaderboard, runsTable, statusBadge, volunteersTable } from './tables.ts';

const TOKEN_KEY = 'gradswarm-admin-token';
/** how often the selected run's detail (volunteers, leases out) is re-read while the tab is visible */
const DETAIL_EVERY_MS = 4000;
/** the step-time summary averages this many of the latest steps */
const BREAKDOWN_STEPS = 20;

let api: Api | undefined;
let socket: Socket<AdminEvents> | undefined;
let runs: RunSummary[] = [];
let selected: string | undefined;
let detail: RunDetail | undefined;
let detailTimer: ReturnType<typeof setInterval> | undefined;
/** the selected run's step rows by step (history, then live), for the step-time summary */
const steps = new Map<number, StepRow>();

const lossChart = new LossChart($('loss-chart'));
const rateChart = new ThroughputChart($('rate-chart'));
const timeChart = new StepTimeChart($('time-chart'));

// ---- signing in and out -------------------------------------------------------------------------------------

function showSignIn(error?: string): void {
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('live').hidden = true;
  $('sign-in').hidden = false;
  const e = $('sign-in-error');
  e.textContent = error ?? '';
  e.hidden = !error;
  $<HTMLInputElement>('token').focus();
}

function signOut(error?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  api = undefined;
  socket?.close();
  socket = undefined;
  clearInterval(detailTimer);
  selected = undefined;
  detail = undefined;
  runs = [];
  $('detail').hidden = true;
  showSignIn(error);
}

/** a 401 anywhere means the token is no longer good: back to the form */
function guard(e: unknown, where: (m: string) => void): void {
  if (e instanceof Unauthorized) return signOut('The coordinator no longer accepts this token. Sign in again.');
  where((e as Error).message);
}

async function signIn(token: string): Promise<void> {
  const a = new Api(token);
  let list: RunSummary[];
  try {
    list = await a.runs();
  } catch (e) {
    if (e instanceof Unauthorized) return showSignIn('That token is wrong: the coordinator refused it.');
    return showSignIn(`Cannot reach the coordinator: ${(e as Error).message}`);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  api = a;
  $<HTMLInputElement>('token').value = '';
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  form.setApi(a);
  setRuns(list);
  connect(token);
  const want = new URLSearchParams(location.hash.slice(1)).get('run');
  const first = list.find((r) => r.id === want) ?? list.find((r) => r.status === 'running') ?? list[0];
  if (first) void select(first.id);
  ($<HTMLDetailsElement>('new-run')).open = !list.length;
}

function connect(token: string): void {
  const live = $('live');
  const show = (state: string, text: string) => {
    live.hidden = false;
    live.dataset.state = state;
    live.textContent = text;
  };
  show('connecting', 'connecting…');
  socket?.close();
  const s: Socket<AdminEvents> = io(`${location.origin}/admin`, { parser, auth: { token }, transports: ['websocket'] });
  socket = s;
  s.on('connect', () => show('on', 'live'));
  s.on('disconnect', () => show('off', 'reconnecting…'));
  s.on('connect_error', (e) => {
    // a refusal by the server's middleware is final (socket.io does not retry it); a network error is retried
    if (!s.active) {
      if (/unauthori[sz]ed|token/i.test(e.message)) return signOut('The coordinator refused this token for the live feed.');
      show('off', `not live: ${e.message}`);
    } else show('off', 'reconnecting…');
  });
  s.on('runs', (list) => setRuns(list));
  s.on('step', ({ runId, record }) => {
    const r = runs.find((x) => x.id === runId);
    if (r && record.step > r.step) patchRun(runId, { step: record.step, loss: record.loss, tokensPerSec: record.tokensPerSec, samples: r.samples + record.samples });
    if (runId === selected) addStep(record);
  });
  s.on('eval', ({ runId, step, valLoss }) => {
    patchRun(runId, { valLoss });
    if (runId === selected) {
      lossChart.val({ step, valLoss });
      renderFacts();
    }
  });
  s.on('status', ({ runId, status, reason }) => {
    patchRun(runId, { status });
    if (runId === selected) notice(`Run ${runId} is ${status}${reason ? ` (${reason})` : ''}.`, false);
  });
}

// ---- the runs list ------------------------------------------------------------------------------------------

function setRuns(list: RunSummary[]): void {
  runs = list;
  renderRuns();
  renderFacts();
}

function patchRun(id: string, p: Partial<RunSummary>): void {
  const r = runs.find((x) => x.id === id);
  if (!r) return;
  Object.assign(r, p);
  renderRuns();
  if (id === selected) renderFacts();
}

function renderRuns(): void {
  runsTable($<HTMLTableSectionElement>('runs'), runs, selected, (id) => void select(id));
  $('no-runs').hidden = runs.length > 0;
}

// ---- the selected run ---------------------------------------------------------------------------------------

async function select(id: string): Promise<void> {
  if (!api) return;
  selected = id;
  detail = undefined;
  history.replaceState(null, '', `#run=${encodeURIComponent(id)}`);
  steps.clear();
  lossChart.clear();
  rateChart.clear();
  timeChart.clear();
  notice('');
  $('download').hidden = true;
  $('detail').hidden = false;
  renderRuns();
  renderFacts();
  await refreshDetail();
  clearInterval(detailTimer);
  detailTimer = setInterval(() => document.visibilityState === 'visible' && void refreshDetail(), DETAIL_EVERY_MS);
}

async function refreshDetail(): Promise<void> {
  const id = selected;
  if (!api || !id) return;
  let d: RunDetail;
  try {
    d = await api.run(id);
  } catch (e) {
    return guard(e, (m) => notice(m));
  }
  if (id !== selected) return;
  const first = !detail;
  detail = d;
  for (const r of d.history) if (!steps.has(r.step)) addStep(r, false);
  for (const v of d.valHistory) lossChart.val(v);
  // the detail's `workers` is the volunteers table (the summary's is a count): count the connected ones
  patchRun(id, {
    status: d.status,
    step: d.step,
    maxSteps: d.maxSteps,
    samples: d.samples,
    loss: d.loss,
    valLoss: d.valLoss,
    tokensPerSec: d.tokensPerSec,
    workers: d.workers.filter((w) => w.connected).length,
    ...(d.weight !== undefined && { weight: d.weight }),
  });
  if (first) {
    $('run-config').textContent = JSON.stringify(d.config, null, 2);
    $<HTMLInputElement>('weight').value = String(d.weight ?? (d.config.swarm?.weight as number | undefined) ?? 1);
  }
  $('f-checkpoint').textContent = d.lastCheckpoint ? `· last checkpoint ${d.lastCheckpoint}` : '';
  volunteersTable($<HTMLTableSectionElement>('volunteers'), d.workers);
  leaderboard($<HTMLOListElement>('leaderboard'), d.workers);
  renderFacts();
}

function addStep(r: StepRow, summarise = true): void {
  steps.set(r.step, r);
  lossChart.step(r);
  rateChart.step(r);
  timeChart.step(r);
  if (summarise) renderBreakdown();
}

function renderBreakdown(): void {
  const m = meanBreakdown(steps.values(), BREAKDOWN_STEPS);
  if (!m) return void $('breakdown').replaceChildren();
  const part = (k: 'compute' | 'wait' | 'aggregate') => h('span', { class: 'part' }, h('i', { style: `background: ${TIME_COLOURS[k]}` }), `${k} ${ms(m[k])}`);
  $('breakdown').replaceChildren(part('compute'), ', ', part('wait'), ', ', part('aggregate'), ` (mean of the last ${m.steps})`);
}

function renderFacts(): void {
  const r = runs.find((x) => x.id === selected);
  if (!r) return;
  $('run-title').replaceChildren(r.name, ' ', statusBadge(r.status));
  $('run-model').textContent = `${r.id} · ${r.model}, ${count(r.params)} parameters${detail ? ` · ${describeShape(detail.config)}` : ''}`;
  $('f-status').replaceChildren(statusBadge(r.status));
  $('f-step').textContent = `${r.step} / ${r.maxSteps}`;
  $('f-loss').textContent = loss(r.loss);
  $('f-val').textContent = loss(r.valLoss);
  $('f-rate').textContent = rate(r.tokensPerSec);
  $('f-samples').textContent = count(r.samples);
  $('f-workers').textContent = String(r.workers);
  $('f-leases').textContent = detail ? String(detail.leasesOut) : '–';
  renderBreakdown();
  const ended = r.status === 'stopped' || r.status === 'done';
  const pause = $<HTMLButtonElement>('pause');
  pause.textContent = r.status === 'paused' ? 'Resume' : 'Pause';
  pause.disabled = ended;
  $<HTMLButtonElement>('stop').disabled = ended;
  const weight = $<HTMLInputElement>('weight');
  if (r.weight !== undefined && document.activeElement !== weight) weight.value = String(r.weight);
}

function describeShape(c: RunDetail['config']): string {
  const m = c.model ?? {};
  const d = c.data ?? {};
  const layers = (n: unknown) => `${n} layer${n === 1 ? '' : 's'}`;
  const shape = m.model === 'gpt' ? `${layers(m.n_layer)}, ${m.n_head} heads, width ${m.n_embd}` : `${layers(m.num_layers)}, hidden size ${m.hidden_size}`;
  return `${shape}; B ${d.batch_size}, T ${d.block_size}, ${c.swarm?.target_batch_size} rows per step`;
}

/** a line under the run's header: an error (red) or a note */
function notice(text: string, error = true): void {
  const el = $('run-error');
  el.textContent = text;
  el.classList.toggle('note', !error);
  el.hidden = !text;
}

// ---- the controls -------------------------------------------------------------------------------------------

async function act<T>(button: HTMLButtonElement, fn: (a: Api, id: string) => Promise<T>): Promise<T | undefined> {
  if (!api || !selected) return;
  button.disabled = true;
  notice('');
  try {
    return await fn(api, selected);
  } catch (e) {
    guard(e, (m) => notice(e instanceof ApiError && e.status === 409 ? `Not possible now: ${m}` : m));
  } finally {
    button.disabled = false;
    renderFacts();
  }
}

$('pause').addEventListener('click', async (e) => {
  const r = runs.find((x) => x.id === selected);
  const res = await act(e.currentTarget as HTMLButtonElement, (a, id) => a.action(id, r?.status === 'paused' ? 'resume' : 'pause'));
  if (res) patchRun(res.id, { status: res.status });
});

$('stop').addEventListener('click', async (e) => {
  if (!confirm(`Stop run ${selected}? Its volunteers move to other runs; a stopped run cannot be resumed.`)) return;
  const res = await act(e.currentTarget as HTMLButtonElement, (a, id) => a.action(id, 'stop'));
  if (res) patchRun(res.id, { status: res.status });
});

$('set-weight').addEventListener('click', async (e) => {
  const weight = Number($<HTMLInputElement>('weight').value);
  if (!(weight > 0)) return notice('The weight must be a number above 0.');
  const ok = await act(e.currentTarget as HTMLButtonElement, (a, id) => a.setWeight(id, weight).then(() => id));
  if (ok) {
    patchRun(ok, { weight });
    notice(`Weight set to ${weight}: new volunteers are shared out by the runs' weights.`, false);
  }
});

let lastDownload: string | undefined;
$('export').addEventListener('click', async (e) => {
  const got = await act(e.currentTarget as HTMLButtonElement, (a, id) => a.export(id));
  if (!got) return;
  if (lastDownload) URL.revokeObjectURL(lastDownload);
  lastDownload = URL.createObjectURL(got.blob);
  const link = document.createElement('a');
  link.href = lastDownload;
  link.download = got.filename;
  link.textContent = got.filename;
  const p = $('download');
  p.replaceChildren('Checkpoint: ', link, ` (${count(got.blob.size)} bytes, safetensors)`);
  p.hidden = false;
  link.click();
});

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $<HTMLInputElement>('token').value.trim();
  if (token) void signIn(token);
});
$('sign-out').addEventListener('click', () => signOut());

const form = createRunForm({
  created: (id) => {
    // the summaries arrive on the socket too; fetch now so the new run can be selected at once
    void api
      ?.runs()
      .then(setRuns)
      .then(() => select(id))
      .catch((e) => guard(e, (m) => notice(m)));
  },
  unauthorized: () => signOut('The coordinator no longer accepts this token. Sign in again.'),
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
else showSignIn();
