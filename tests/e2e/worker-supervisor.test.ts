// `gradswarm worker` as a GPU server runs it: it joins a coordinator through Dawn and contributes; when its worker
// process dies hard (here SIGSEGV, as the Dawn crash in ENVIRONMENT.md would) the supervising parent says so and
// starts a fresh one, which rejoins as the same volunteer (the identity token the supervisor keeps for its children)
// and contributes again; SIGTERM stops both cleanly.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { ROOT, startCoordinator, tinyRun, until } from '../swarm/helpers.ts';

let coord: Coordinator;
beforeAll(async () => {
  coord = await startCoordinator();
  await coord.addRun(tinyRun({ swarm: { target_batch_size: 8 }, train: { max_steps: 100_000 } }), { id: 'soak' });
});
afterAll(async () => coord?.close());

/** the worker processes a supervisor runs (not the esbuild service the launcher may have left running after a rebuild) */
const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-f', '--', '--no-supervise'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

describe('gradswarm worker (Node, supervised)', () => {
  it('contributes, restarts itself after a crash and says so, stops on SIGTERM', async () => {
    const run = coord.runs.get('soak')!;
    const p = spawn(process.execPath, [join(ROOT, 'coordinator', 'gradswarm.mjs'), 'worker', '--coordinator', coord.url, '--name', 'srv1'], { cwd: ROOT });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((ok) => p.once('exit', (c) => ok(c)));
    const nodeWorkers = () => [...run.workers.values()].filter((w) => w.kind === 'node');
    await until(() => nodeWorkers().some((w) => w.samples > 0), 90_000, `the worker to contribute (output: ${out})`);
    expect(out).toMatch(/gradswarm worker on .*swiftshader/i);
    const [child] = childrenOf(p.pid!);
    expect(child).toBeGreaterThan(0);
    process.kill(child, 'SIGSEGV');
    await until(() => /killed by SIGSEGV.*restarting it in \d+ s \(restart 1\)/.test(out), 30_000, `the supervisor to report the crash (output: ${out})`);
    await until(() => !nodeWorkers()[0].connected, 30_000, 'the coordinator to notice the crash');
    const before = nodeWorkers()[0].samples;
    await until(() => nodeWorkers()[0].connected && nodeWorkers()[0].samples > before, 90_000, 'the restarted worker to contribute');
    expect(nodeWorkers()).toHaveLength(1); // the same volunteer, its record kept
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until(() => run.connectedWorkers === 0, 10_000, 'the worker to leave');
    expect(childrenOf(p.pid!)).toEqual([]);
  }, 240_000);
});
