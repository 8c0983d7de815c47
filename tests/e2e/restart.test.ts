// A coordinator killed with SIGKILL mid-run and started again: the run comes back at its last checkpoint (the
// curve up to it too), the Node worker that was training reconnects on its own and training continues; nothing
// checkpointed is lost. Driven as a researcher would, through `gradswarm start`, `gradswarm worker` and
// `gradswarm run …` (including the messages for a coordinator that is down and a wrong token).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../coordinator/checkpoint.ts';
import { decodeCheckpoint } from '../../shared/models/checkpoint.ts';
import { readFileSync } from 'node:fs';
import { ROOT, smallCorpus, sleep } from '../swarm/helpers.ts';

const CLI = join(ROOT, 'coordinator', 'gradswarm.mjs');
const TOKEN = `restart-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const dir = mkdtempSync(join(tmpdir(), 'gs-restart-'));
const dataDir = join(dir, 'data');
const procs: ChildProcess[] = [];
afterAll(() => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as { port: number }).port;
  await new Promise((ok) => s.close(ok));
  return port;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  const p = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env } });
  procs.push(p);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  return { p, out: () => out };
}

async function gs(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout + x.stderr };
  }
}

async function waitFor<T>(f: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

describe('coordinator restart', () => {
  it('kill -9 mid-run: the run resumes at its last checkpoint, the worker reconnects, training continues', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = join(dir, 'tiny.json');
    writeFileSync(
      config,
      JSON.stringify({
        model: { model: 'gpt', n_layer: 1, n_head: 2, n_embd: 16, block_size: 16 },
        data: { corpus: smallCorpus(), batch_size: 4, block_size: 16 },
        optim: { lr: 1e-2, warmup_iters: 2, lr_decay_iters: 400 },
        train: { max_steps: 400, eval_interval: 0, checkpoint_interval: 4, keep_checkpoints: 2 },
        swarm: { target_batch_size: 8, lease_timeout_s: 20 },
      }),
    );
    const env = { GRADSWARM_TOKEN: TOKEN };
    const admin = ['--coordinator', url, '--data-dir', dataDir];
    // the CLI with no coordinator yet
    const down = await gs(['run', 'list', ...admin], env);
    expect(down.code).not.toBe(0);
    expect(down.out).toMatch(/no coordinator at http:\/\/127\.0\.0\.1:\d+\/.*gradswarm start/);

    const startArgs = ['start', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--config', config, '--run-id', 'r', '--no-volunteer'];
    const c1 = start(startArgs, env);
    const worker = start(['worker', '--coordinator', url, '--name', 'w1', '--no-supervise'], {});
    const stepOf = async () => {
      const r = await gs(['run', 'status', 'r', '--once', ...admin], env);
      const m = /step (\d+)\/400 running/.exec(r.out);
      return m ? Number(m[1]) : undefined;
    };
    await waitFor(async () => ((await stepOf()) ?? 0) >= 10 || undefined, 120_000, `10 steps (coordinator: ${c1.out()})`);
    const wrong = await gs(['run', 'list', ...admin, '--token', 'not-the-token-at-all']);
    expect(wrong.out).toMatch(/refused the admin token from --token/);

    c1.p.kill('SIGKILL');
    await new Promise((ok) => c1.p.once('exit', ok));
    const ckpt = await latestCheckpoint(join(dataDir, 'runs', 'r'));
    expect(ckpt).toBeDefined();
    const savedStep = decodeCheckpoint(readFileSync(ckpt!)).step;
    expect(savedStep).toBeGreaterThanOrEqual(8);

    const c2 = start(startArgs, env);
    await waitFor(async () => (/restored at step \d+/.test(c2.out()) ? true : undefined), 60_000, `the restart (${c2.out()})`);
    expect(c2.out()).toContain(`run r: restored at step ${savedStep} (running)`);
    // the same worker process, never restarted, reconnects and training goes on past the checkpoint
    const after = await waitFor(async () => {
      const s = await stepOf();
      return s !== undefined && s >= savedStep + 4 ? s : undefined;
    }, 120_000, `training to continue (coordinator: ${c2.out()}; worker: ${worker.out()})`);
    expect(after).toBeGreaterThanOrEqual(savedStep + 4);
    expect(worker.p.exitCode).toBeNull();
    const detail = await (await fetch(`${url}/api/runs/r`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(detail.history[0].step).toBe(1); // the curve before the kill came back
    expect(detail.workers.filter((w: { connected: boolean; kind: string }) => w.connected && w.kind === 'node')).toHaveLength(1);

    const out = join(dir, 'r.safetensors');
    expect((await gs(['run', 'export', 'r', '--out', out, ...admin], env)).out).toMatch(/wrote .*r\.safetensors/);
    expect(decodeCheckpoint(readFileSync(out)).step).toBeGreaterThanOrEqual(after);
    expect((await gs(['run', 'stop', 'r', ...admin], env)).out).toMatch(/run r: stopped/);
    worker.p.kill('SIGTERM');
    c2.p.kill('SIGTERM');
    await new Promise((ok) => c2.p.once('exit', ok));
  }, 400_000);
});
