// docs/RELIABILITY.md from one run of the suites (bench/reliability.ts), and the tables printed on the console.
import type { FaultResult } from './faults.ts';
import type { FuzzResult } from './fuzz.ts';
import type { MatrixResult, ScenarioResult } from './matrix.ts';
import type { RateLimitProbe } from './probes.ts';

export interface ReliabilityReport {
  date: string;
  machine: string;
  seed: number;
  quick: boolean;
  seconds: number;
  setup: { params: number; vocab: number; steps: number; workers: number; attackers: number; accum: number; batch: number; block: number; faultSteps: number; livenessBudgetS: number; fuzzLanes: number };
  matrix: MatrixResult;
  liveness: ScenarioResult[];
  rateLimit: RateLimitProbe;
  faults: FaultResult[];
  fuzz: FuzzResult;
}

const MiB = 2 ** 20;
const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(2)}%`;
const esc = (s: string) => s.replace(/\|/g, '\\|');

/** 'outlier 16, banned 5' (largest first; the end-of-run 'run-not-running' left out) */
export function codeList(codes: Record<string, number>): string {
  const e = Object.entries(codes).filter(([c]) => c !== 'run-not-running');
  return e.length ? e.sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ') : '–';
}

function refusedHow(r: ScenarioResult): string {
  const parts = [codeList(r.codes)].filter((x) => x !== '–');
  const closed = r.tallies['connections closed by the coordinator'];
  if (closed) parts.push(`connection closed by the coordinator ${closed}×`);
  if (r.checksFailed) parts.push(`outvoted in spot checks ${r.checksFailed}×`);
  return parts.join('; ') || 'nothing refused';
}

/** the attackers' answers the run applied, those it acknowledged in parentheses, and what else they tallied */
function accepted(r: ScenarioResult): string {
  const extra = Object.entries(r.tallies)
    .filter(([k]) => k !== 'connections closed by the coordinator' && k !== 'pushes sent')
    .map(([k, n]) => `${k}: ${n}`);
  return [`${r.applied} (${r.accepted})`, ...extra].join('; ');
}

function coordinator(r: ScenarioResult): string {
  const bad: string[] = [];
  if (r.health.failures) bad.push(`health failed ${r.health.failures}/${r.health.polls}`);
  if (!r.freshJoin) bad.push('a fresh client could not join');
  if (r.accounting) bad.push(r.accounting);
  if (r.statusChanges.length) bad.push(`status changed: ${r.statusChanges.join(', ')}`);
  return bad.length ? bad.join('; ') : `up (health ${r.health.polls}/${r.health.polls}, slowest ${Math.round(r.health.maxMs)} ms), fresh client joined, each batch once`;
}

export function attackTable(m: MatrixResult): string {
  const head = '| attack | what the attackers did | how the coordinator answered | banned / identities | their answers applied (acknowledged) | val loss (vs clean) | coordinator |\n| --- | --- | --- | --- | --- | --- | --- |';
  const rows = m.attacks.map(
    (r) => `| ${r.name} | ${esc(r.tried)} | ${esc(refusedHow(r))} | ${r.banned} / ${r.identities} | ${esc(accepted(r))} | ${r.valLoss.toFixed(4)} (${pct(r.relToClean)}) | ${esc(coordinator(r))} |`,
  );
  const c = m.control;
  if (c) rows.push(`| **control**: ${c.attacked.name} | ${esc(c.attacked.tried)}, against no defences (plain mean, no screen, no spot checks) | ${esc(refusedHow(c.attacked))} | ${c.attacked.banned} / ${c.attacked.identities} | ${c.attacked.applied} (${c.attacked.accepted}) | ${c.attacked.valLoss.toFixed(4)} (${pct(c.attacked.relToClean)} vs its own clean run, ${c.clean.valLoss.toFixed(4)}) | ${esc(coordinator(c.attacked))} |`);
  return [head, ...rows].join('\n');
}

export function livenessTable(rows: ScenarioResult[], clean: ScenarioResult, K: number): string {
  const head = '| attack | what the attackers did | steps done | time | refused | banned / identities | coordinator |\n| --- | --- | --- | --- | --- | --- | --- |';
  return [
    head,
    `| (clean) | every worker honest | ${clean.steps} / ${K} | ${clean.seconds.toFixed(1)} s | – | – | ${esc(coordinator(clean))} |`,
    ...rows.map((r) => `| ${r.name} | ${esc(r.tried)} | **${r.steps} / ${K}**${r.finished ? '' : ' (gave up)'} | ${r.seconds.toFixed(1)} s | ${esc(codeList(r.codes))} | ${r.banned} / ${r.identities} | ${esc(coordinator(r))} |`),
  ].join('\n');
}

const observed = (o: Record<string, number | boolean>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

export function faultTable(faults: FaultResult[], K: number): string {
  const head = '| fault | what was done | what the coordinator did | refused (to the faulty workers) | every batch once | steps |\n| --- | --- | --- | --- | --- | --- |';
  return [head, ...faults.map((f) => `| ${f.name} | ${esc(f.tried)} | ${esc(observed(f.observed))} | ${esc(codeList(f.codes))} | ${f.accounting ? `**no**: ${esc(f.accounting)}` : 'yes'} | ${f.steps} / ${K}${f.finished ? '' : ' (gave up)'} |`)].join('\n');
}

export function fuzzSummary(f: FuzzResult): string {
  const kinds = Object.entries(f.byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `- **${f.frames.toLocaleString('en')} frames** in ${f.seconds.toFixed(0)} s (seed ${f.seed}): ${kinds}.`,
    `- ${f.connections.toLocaleString('en')} connections; the coordinator closed ${f.closedByCoordinator.toLocaleString('en')} of them (malformed frames, frames over the size limit).`,
    `- Replies to events with an ack: ${codeList(f.replies)}.`,
    `- Health checks after every batch: ${f.healthChecks - f.healthFailures}/${f.healthChecks} answered; **${f.crashed ? 'the coordinator crashed' : 'no crash'}**.`,
    `- Coordinator memory (after a full GC): RSS ${(f.memBefore.rss / MiB).toFixed(0)} → ${(f.memAfter.rss / MiB).toFixed(0)} MiB (peak ${(f.memPeak.rss / MiB).toFixed(0)}), heap ${(f.memBefore.heapUsed / MiB).toFixed(1)} → ${(f.memAfter.heapUsed / MiB).toFixed(1)} MiB.`,
    `- Training under the fuzz: the run went from step ${f.stepsBefore} to ${f.stepsAfter} (one honest worker).`,
    `- The run's workers table: ${f.workerRowsBefore} → ${f.workerRowsAfter} rows (a worker id that leaves having done nothing is forgotten).`,
  ].join('\n');
}

export function renderReport(x: ReliabilityReport): string {
  const s = x.setup;
  const m = x.matrix;
  const row = (name: string) => m.attacks.find((r) => r.name === name);
  const sign = row('sign-flip');
  const constant = row('constant-direction');
  const twice = row('outlier-twice');
  const labels = row('wrong-labels');
  const push = row('sub-screen-push');
  const hoard = x.liveness.find((r) => r.name === 'lease-hoarding');
  const invalid = x.liveness.find((r) => r.name === 'invalid-answers');
  const slow = x.faults.find((f) => f.name === 'slow-volunteers');
  const idents = m.attacks.filter((r) => r.banned).map((r) => `${r.name} ${r.identities}`);
  const all = [m.clean, ...m.attacks];
  const honestStrikes = all.reduce((a, r) => a + r.honestStrikes, 0);
  const honestDuplicates = all.reduce((a, r) => a + (r.honestCodes.duplicate ?? 0), 0);
  const gradientAttacks = m.attacks.filter((r) => ['sign-flip', 'constant-direction', 'outlier-twice', 'sub-screen-push', 'nan-inf', 'wrong-labels'].includes(r.name));
  const rl = x.rateLimit;
  const limited = (c: Record<string, number>) => c['rate-limited'] ?? 0;
  return `# Reliability: attacks, faults and fuzz

Written by \`npm run bench -- reliability${x.quick ? ' --quick' : ''}\` (bench/reliability.ts; ${Math.round(x.seconds / 60)} min) on ${x.machine}, ${x.date},
seed ${x.seed} (\`--seed ${x.seed}\` replays the fuzz frames and the runs' data order). Not edited by hand. The short versions run in
\`npm test\`: \`tests/reliability/{attacks,faults,fuzz}.test.ts\` (fresh seeds; every assertion holds for any seed).

## Attacks

A real coordinator, and ${s.workers} simulated volunteers (socket.io-client, msgpack frames, the worker protocol of
\`client/worker/loop.ts\`) that compute real gradients on the CPU with the float64 reference model
(\`shared/models/reference\`) on the run's own batches; each keeps the identity token its first welcome gave it. In each run
**${s.attackers} of the ${s.workers} attack (${Math.round((100 * s.attackers) / s.workers)}%)**; an attacker that is banned comes back at once as a new identity (it drops its token) and
keeps attacking. All of them, honest or not, connect from 127.0.0.1. The model is the tiny
gpt of the tests (n_layer 1, n_head 2, n_embd 16, block ${s.block}; ${s.params.toLocaleString('en')} parameters, vocabulary ${s.vocab}), B = ${s.batch},
target batch ${s.accum * s.batch} (A = ${s.accum} batches a step, one per lease), **K = ${s.steps} steps**, AdamW at lr 1e-2. Defences (the run's swarm
config): \`aggregator: 'centered_clip'\` (τ = the median distance, 3 iterations), \`norm_screen: 10\` (× the median of the
per-batch norms of recently applied gradients; while a run is young, of those seen), \`spot_check_fraction: 0.5\` (tolerance 1e-3;
judged by groups that agree, coordinator/swarm/spot-check.ts: a pair outvotes a dissenter only with a good record, else a fourth
copy, and a fifth to break a tie of two pairs without a record; \`spot_check_confirm: 0.25\` of the passes, and those of a pair with no record,
get a third copy), \`probation: 3\` (a new identity's leases are all checked
until it passed 3 checks; \`probation_after_ban: 12\` from a network that produced a banned identity, so every attacker after the
first ban), \`ban_after: 3\`, \`lease_timeout_s: 10\`. "Applied": the attackers' train answers the run used (its credit: applied alone, or
agreeing in a spot check); in parentheses those it acknowledged (an answer to a checked lease is acknowledged, then judged).
The validation loss is computed on the coordinator's side: the reference model's mean loss over 16 fixed
validation batches (\`dataset.evalBatch\`) of the final weights. The clean run (same seed, config and K, every worker honest)
ends at **${m.clean.valLoss.toFixed(4)}** (from ${m.clean.valLossInit.toFixed(4)} at initialisation) in ${m.clean.seconds.toFixed(1)} s. "Coordinator": \`GET /api/health\` polled
every 200 ms throughout the run, a fresh honest client joining at K/2 (hello, join, weights) and \`SwarmRun.applied\` exactly
\`{i → ⌊i/A⌋}\`.

${attackTable(m)}

Every attack ends within 5% of the clean run${m.attacks.every((r) => Math.abs(r.relToClean) < 0.05) ? '' : ' **but for the rows over it**'}; the control shows what the sign flip does without the defences.
Reproduce a row: \`npm run bench -- reliability --only <attack> --seed ${x.seed}\` (its clean run comes with it); the short
version of the table: \`npx vitest run tests/reliability/attacks.test.ts\`.

### Liveness: attacks that hold the run up

The same setup with a budget of ${s.livenessBudgetS} s per run (the clean run needs ${m.clean.seconds.toFixed(1)} s):

${livenessTable(x.liveness, m.clean, s.steps)}

Reproduce: \`npm run bench -- reliability --only lease-hoarding,invalid-answers --seed ${x.seed}\`; the short version (a 1 s
lease timeout, a 6 s budget) is in tests/reliability/attacks.test.ts.

## Faults

Each fault in its own run beside 4 healthy simulated workers (each answer takes 100 ms, as a volunteer's GPU would), K = ${s.faultSteps},
A = 6, an eval every 4 steps; "every batch once" is \`SwarmRun.applied\` = \`{i → ⌊i/A⌋}\` for the steps done.

${faultTable(x.faults, s.faultSteps)}

Reproduce a row: \`npm run bench -- reliability --only <fault> --seed ${x.seed}\`; the short version:
\`npx vitest run tests/reliability/faults.test.ts\`.

Not repeated here: **the coordinator killed with SIGKILL** mid-run (\`tests/e2e/restart.test.ts\`: it resumes at its last checkpoint
with its curve, the Node worker reconnects on its own and training continues) and **a GPU lost in the browser**
(\`tests/e2e/volunteer-page.test.ts\`: the page says so in words and offers Reload).

## Fuzz

A coordinator alone in a child process (a crash is the process exiting) with one run, one honest worker training it; frames
from ${s.fuzzLanes} connections at once, half of them said hello and joined first; raw frames through \`client.io.engine.write\`, schema-level
frames as socket.io events (bench/reliability/fuzz-frames.ts lists the kinds).

${fuzzSummary(x.fuzz)}

Reproduce: \`npm run bench -- reliability --only fuzz --seed ${x.seed}\` (the same frames); the short version (3,000 frames, the
coordinator in the test's process, an uncaught exception fails it): \`npx vitest run tests/reliability/fuzz.test.ts\`.

## Weaknesses found

1. **Fixed: an event named \`toString\`, \`constructor\` or \`__proto__\` killed the coordinator.** The middleware looked the event's
   schema up in a plain object and found \`Object.prototype\`'s function; its missing \`safeParse\` threw out of socket.io's
   middleware runner (no try/catch there) as an uncaught exception. \`INBOUND\` (shared/protocol.ts) now has no prototype;
   the unknown-events attack and the fuzz send these names. \`server.ts\` now also looks names up with \`Object.hasOwn\`.
2. **Fixed: lease hoarding held a run up.** A worker holds one lease at a time; a lease out for 3× its holder's usual turnaround
   (the run's, for a holder that never answered) gets a backup copy as soon as a worker waits with nothing queued (MapReduce's
   backup tasks), no longer after a quarter of lease_timeout_s (only a newcomer's first lease keeps that slack: it compiles its
   pipelines; not where its network already sent a worker struck for hoarding); queued batches go to workers with a record first, strangers and
   suspects after a short window; a worker beaten by copies twice in a row without answering either gets a strike (a straggler's
   late answer, or a next lease request holding the newer weights, clears it). ${hoard ? `2 hoarders of 10: **${hoard.steps} of ${s.steps} steps in ${hoard.seconds.toFixed(1)} s** (the clean run: ${m.clean.seconds.toFixed(1)} s), their identities banned ${hoard.banned} / ${hoard.identities}` : 'see the table'};
   before: 4 of 30 in 60 s (and 1 of 30 before the one-lease cap). Honest slow volunteers are not struck: ${slow ? `slow-volunteers above, late answers refused ${codeList(slow.codes)}, no strike` : 'see slow-volunteers'}.
3. **Fixed: answers the schema refuses held their lease until it timed out, and earned no strike.** A \`submit\` refused as
   \`bad-message\` whose lease the sender holds now releases the lease at once and strikes the sender: ${invalid ? `2 such workers of 10 let the run do ${invalid.steps} of ${s.steps} steps in ${invalid.seconds.toFixed(0)} s` : 'see the table'}.
4. **Fixed: two colluding attackers were each other's "second opinion".** An outlier is refused and its batch goes to another
   worker (not back to the sender: 31278a3). A second outlier for the batch used to be taken, clipped to the screen's cap, with no
   strike, so the other attacker could get 16 of their 1000× gradients in. Now the second is refused too and the batch waits for a
   third opinion, preferably from a worker with a record on another network: a normal answer strikes both senders, a third outlier
   is an honest spike, taken clipped, nobody blamed. ${twice ? `outlier-twice: ${twice.applied} of the attackers' answers applied; gradients taken clipped in the whole run (honest spikes): ${twice.outliersClipped}` : 'see outlier-twice'}.
5. **Fixed: a ban lasted one connection.** Volunteers carry an identity token the coordinator signs (HMAC; coordinator/swarm/identity.ts)
   and present it at every hello (the page keeps it in localStorage, the Node worker in memory and \`--identity-file\`); a run keeps
   strikes, passed checks, probation and bans under it, and in \`runs/<id>/state.json\` across a restart (tests/swarm/identity.test.ts:
   a banned token stays banned after a reconnect and a restart). Identities are free to mint, so a new one starts on probation (every
   lease checked until it passed 3 checks; 12 from a network that produced a banned identity, which is not a ban by address: NAT).
   Every banned attacker here drops its token (identities used by 2 attackers: ${idents.join(', ') || '–'}); on probation their answers
   are checked before they count: ${gradientAttacks.map((r) => `${r.name} ${r.applied}`).join(', ')} applied.
6. **Fixed: the norm screen's warm-up.** The first 4 gradients of a run, and of every coordinator start, went unscreened, and a
   1000× gradient taken then inflated the median (3 were accepted in sign-flip and in constant-direction). The screen now keeps
   only the norms of gradients the run applied (an outvoted one no longer enters its median), screens from a run's 3rd gradient
   against the median of the norms seen so far, and is saved with the run (\`state.json\`, restored at a restart). 1000× answers
   applied: ${[sign, constant].filter((r) => r !== undefined).map((r) => `${r.name} ${r.applied}`).join(', ')}.
   Still: the first two gradients of a run are unscreened (in a run that spot-checks, probation checks them).
7. **Fixed: the per-connection rate limit was per namespace socket.** The bucket now lives on the engine connection, and a
   client that leaves its only namespace loses the connection (a DISCONNECT packet used to leave it open, dropping the events
   that came after): after ${rl.n} events at once (${limited(rl.first)} refused as rate-limited), a raw DISCONNECT of \`/\`
   ${rl.closed ? 'had the coordinator close the websocket, so no fresh session could start on it' : rl.renewed ? `and a CONNECT on the same websocket renewed the session: ${rl.n} more events at once, ${rl.n - limited(rl.afterReconnect)} taken, ${limited(rl.afterReconnect)} refused` : 'and a CONNECT did not renew the session'}.
8. **Fixed: the run's workers table was never pruned.** A worker that leaves having contributed nothing and done nothing
   wrong is now forgotten (the fuzz: ${x.fuzz.workerRowsBefore} → ${x.fuzz.workerRowsAfter} rows); contributors, struck and banned workers stay.
9. **Fixed: colluding twins passed a spot check** (two attackers computing the same wrong gradient agree with each other; with a
   dissenting honest third they even outvoted it and had it struck). Checks are now judged by groups (coordinator/swarm/spot-check.ts):
   a pair outvotes a dissenter only if one of the pair has a good record, else a fourth copy decides, and a fifth if two pairs then
   disagree with no record to tell them apart (as at a run's start); a quarter of the passes, and every pass of a pair with no record
   (while anyone else can compute a copy), get a confirming third copy; copies avoid the holders' network.
   ${labels ? `wrong-labels: ${labels.applied} answers applied, outvoted ${labels.checksFailed}×, ${labels.spotChecks.confirmed} passes confirmed` : ''}${push ? `; sub-screen-push: ${push.applied} applied` : ''}. Strikes against honest
   workers in the clean run and every attack: **${honestStrikes}** (asserted by the short version).
10. **Fixed: a message with extra arguments got its refusal as a \`refused\` event**, never through its ack (the middleware took
   the ack from the third place; socket.io puts it last), so the sender waited for its ack timeout; now the ack is the last argument
   and anything but one payload before it is refused through it. (Fixed earlier: after the last step the run no longer hands out
   train leases of step K + 1 while the final eval is out.)
11. **Still open.** A banned attacker that drops its token is a stranger again: on probation its answers never count unchecked, but
   each of its leases costs the run a second copy. A hoarder that claims the newest weights in its lease requests is not struck (an
   honest worker whose lease was beaten while it fetched them says the same): it still costs each hoarded step a backup after 3× the
   usual turnaround; and a hoarder with a new identity from a network not seen hoarding before costs its first step a newcomer's
   slack (a quarter of lease_timeout_s). The defences cost compute: in the clean run ${m.clean.spotChecks.passed + m.clean.spotChecks.failed} batches of ${s.steps * s.accum} were spot-checked (a sampled half, and
   every probation lease), ${m.clean.spotChecks.confirmed} of them confirmed by a third copy, and it took ${m.clean.seconds.toFixed(1)} s (1.9 s in the report before
   probation and confirmations); honest workers' late answers refused as duplicates (a backup answered first) in the clean run
   and the attacks: ${honestDuplicates}.
`;
}
