// The runs a coordinator knows, on disk, so a restart (even after kill -9) brings them all back: one folder per
// run under <data-dir>/runs/<id>/ with
//   run.json       {id, name, createdAt, status, config}: the parsed config (defaults filled in), written atomically
//                  at creation and on every status or weight change;
//   metrics.jsonl  one line per step ({step, loss, lr, ...}) and per eval ({step, valLoss}), appended as they come,
//                  so the console's curves survive a restart (lines past the resumed checkpoint are dropped);
//   ckpt-*.safetensors and their .optim siblings (coordinator/checkpoint.ts);
//   state.json     the volunteers' records by identity (strikes, checks passed, bans, probation), the networks that
//                  produced a ban and the norm screen's history (SwarmRun.exportState), written atomically at every
//                  checkpoint, every ban and at shutdown, so neither a ban nor the screen's warm-up restarts with it.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunStatus } from '../../shared/protocol.ts';
import type { RunState } from './run.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';

export interface RunRecord {
  id: string;
  name: string;
  createdAt: string;
  status: RunStatus;
  config: RunConfig;
}

export const runDir = (dataDir: string, id: string) => join(dataDir, 'runs', id);

/** write <run dir>/<name> whole or not at all (a kill mid-write leaves the old file) */
function writeAtomically(dataDir: string, id: string, name: string, text: string): void {
  const dir = runDir(dataDir, id);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

export function saveRunRecord(dataDir: string, r: RunRecord): void {
  writeAtomically(dataDir, r.id, 'run.json', `${JSON.stringify(r, null, 2)}\n`);
}

export function saveRunState(dataDir: string, id: string, state: RunState): void {
  writeAtomically(dataDir, id, 'state.json', JSON.stringify(state));
}

/** the run's state.json, or undefined if there is none or it cannot be read (reported) */
export function loadRunState(dataDir: string, id: string, warn: (m: string) => void = () => {}): RunState | undefined {
  const p = join(runDir(dataDir, id), 'state.json');
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as RunState;
  } catch (e) {
    warn(`run ${id}: cannot read ${p} (${(e as Error).message}); the volunteers' records start afresh`);
    return undefined;
  }
}

/** every run folder with a readable run.json, oldest first; unreadable ones are reported, not fatal */
export function loadRunRecords(dataDir: string, warn: (m: string) => void = () => {}): RunRecord[] {
  const root = join(dataDir, 'runs');
  if (!existsSync(root)) return [];
  const out: RunRecord[] = [];
  for (const id of readdirSync(root)) {
    const p = join(root, id, 'run.json');
    if (!existsSync(p)) continue;
    try {
      out.push(JSON.parse(readFileSync(p, 'utf8')) as RunRecord);
    } catch (e) {
      warn(`run ${id}: cannot read ${p} (${(e as Error).message}); skipped`);
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export function appendMetric(dataDir: string, id: string, rec: object): void {
  appendFileSync(join(runDir(dataDir, id), 'metrics.jsonl'), `${JSON.stringify(rec)}\n`);
}

/** the metrics lines of a run with step ≤ upTo (a torn last line from a kill is ignored) */
export function loadMetrics(dataDir: string, id: string, upTo: number): Record<string, number>[] {
  const p = join(runDir(dataDir, id), 'metrics.jsonl');
  if (!existsSync(p)) return [];
  const out: Record<string, number>[] = [];
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as Record<string, number>;
      if (typeof r.step === 'number' && r.step <= upTo) out.push(r);
    } catch {
      // a line cut short by a crash
    }
  }
  return out;
}
