// The researcher's API on a live coordinator: every admin route and the /admin feed refuse a missing or wrong
// token and a volunteer's socket; with the token, runs are created (a bad config lists every problem by path),
// paused, resumed, re-weighted, stopped and exported as a checkpoint that decodes with PyTorch names; the token
// file is made once with mode 0600 and reused.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateToken, tokenMatches } from '../../coordinator/swarm/auth.ts';
import { Coordinator } from '../../coordinator/swarm/server.ts';
import { parser } from '../../shared/codec.ts';
import { decodeCheckpoint } from '../../shared/models/checkpoint.ts';
import { ask, simWorker, smallCorpus, tinyRun } from './helpers.ts';

const TOKEN = `t-${Math.random().toString(36).slice(2)}-${Date.now()}`;
let coord: Coordinator;
let url: string;

beforeAll(async () => {
  coord = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gs-admin-')), token: TOKEN });
  url = await coord.listen();
  await coord.addRun(tinyRun(), { id: 'a1' });
});
afterAll(async () => coord?.close());

const call = (method: string, path: string, body?: unknown, token: string | null = TOKEN) =>
  fetch(new URL(path, url), {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });

const ADMIN_ROUTES: [string, string, unknown?][] = [
  ['GET', 'api/runs'],
  ['GET', 'api/runs/a1'],
  ['POST', 'api/runs', { config: {} }],
  ['POST', 'api/config/validate', { config: {} }],
  ['POST', 'api/runs/a1/pause'],
  ['POST', 'api/runs/a1/resume'],
  ['POST', 'api/runs/a1/stop'],
  ['PATCH', 'api/runs/a1', { weight: 2 }],
  ['GET', 'api/runs/a1/export'],
];

describe('admin auth', () => {
  it('every admin route refuses no token, a wrong one, and a near miss', async () => {
    for (const [m, p, b] of ADMIN_ROUTES) {
      for (const t of [null, 'wrong', TOKEN.slice(0, -1), `${TOKEN}x`]) {
        const r = await call(m, p, b, t);
        expect(r.status, `${m} ${p} with ${t}`).toBe(401);
        expect((await r.json()).error).toMatch(/admin token/);
      }
    }
    expect(coord.runs.get('a1')!.status).toBe('running'); // nothing above acted
    expect((await call('GET', 'api/health', undefined, null)).status).toBe(200);
    const pub = await (await call('GET', 'api/runs/a1/public', undefined, null)).json();
    expect(pub).toMatchObject({ id: 'a1', model: 'gpt', history: [] });
    expect(pub.workers).toBe(0); // a count, nothing about any volunteer
    expect(JSON.stringify(pub)).not.toMatch(/workerId|adapter|refused|optim/);
  });

  it('the /admin feed refuses a wrong token; a volunteer socket cannot send admin events', async () => {
    for (const token of [undefined, 'wrong']) {
      const s = io(`${url}admin`, { parser, transports: ['websocket'], reconnection: false, forceNew: true, auth: token ? { token } : {} });
      const err = await new Promise<Error>((ok) => s.once('connect_error', ok));
      expect(err.message).toMatch(/unauthorized/);
      s.close();
    }
    const ok = io(`${url}admin`, { parser, transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: TOKEN } });
    const runs = await new Promise<{ id: string }[]>((res) => ok.once('runs', res));
    expect(runs.map((r) => r.id)).toContain('a1');
    ok.close();
    const { socket } = await simWorker(url, 'a1');
    for (const ev of ['pause', 'stop', 'create-run', 'run-control']) {
      expect(await ask(socket, ev, { runId: 'a1' })).toMatchObject({ ok: false, code: 'bad-message' });
    }
    expect(coord.runs.get('a1')!.status).toBe('running');
    socket.close();
  });

  it('the token file is made once, mode 0600, and compared exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-token-'));
    const a = loadOrCreateToken(dir, undefined);
    expect(a.source).toBe('generated');
    expect(statSync(a.path!).mode & 0o777).toBe(0o600);
    const b = loadOrCreateToken(dir, undefined);
    expect(b).toMatchObject({ source: 'file', token: a.token });
    expect(loadOrCreateToken(dir, 'x'.repeat(20))).toMatchObject({ source: 'env', token: 'x'.repeat(20) });
    expect(() => loadOrCreateToken(dir, 'short')).toThrow(/16 characters/);
    expect(tokenMatches(a.token, a.token)).toBe(true);
    expect(tokenMatches(`${a.token} `, a.token)).toBe(false);
    expect(tokenMatches(undefined, a.token)).toBe(false);
  });
});

describe('run control', () => {
  it('creates runs (every config problem listed by path), pauses, resumes, weights, stops and exports', async () => {
    const bad = await call('POST', 'api/runs', { id: 'b', config: { model: { model: 'gpt', n_head: 3, n_embd: 16, bogus: 1 }, data: { batch_size: 0 }, train: { max_steps: 'ten' }, extra: {} } });
    expect(bad.status).toBe(400);
    const { problems } = await bad.json();
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^extra: unknown key/), expect.stringMatching(/^data\.batch_size:/), expect.stringMatching(/^train\.max_steps:/), expect.stringMatching(/^model\.bogus|^model: .*bogus/)]));
    const v = await (await call('POST', 'api/config/validate', { config: { data: { corpus: '/no/such/file.txt' } } })).json();
    expect(v.ok).toBe(false);
    expect(v.problems.join(' ')).toMatch(/data\.corpus/);

    const config = { model: { model: 'lstm', embed_size: 8, hidden_size: 16 }, data: { corpus: smallCorpus(), batch_size: 4, block_size: 16 }, train: { max_steps: 20 } };
    const created = await call('POST', 'api/runs', { id: 'b', name: 'my lstm', config });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: 'b', name: 'my lstm', model: 'lstm', status: 'running', step: 0 });
    expect((await call('POST', 'api/runs', { id: 'b', config })).status).toBe(409);
    const list = await (await call('GET', 'api/runs')).json();
    expect(list.map((r: { id: string }) => r.id).sort()).toEqual(['a1', 'b']);

    expect(await (await call('POST', 'api/runs/b/pause')).json()).toEqual({ id: 'b', status: 'paused' });
    expect(await (await call('POST', 'api/runs/b/resume')).json()).toEqual({ id: 'b', status: 'running' });
    expect(await (await call('PATCH', 'api/runs/b', { weight: 3 })).json()).toMatchObject({ weight: 3 });
    expect((await call('PATCH', 'api/runs/b', { weight: -1 })).status).toBe(400);

    const ex = await call('GET', 'api/runs/b/export');
    expect(ex.headers.get('content-disposition')).toMatch(/attachment; filename="b-step0\.safetensors"/);
    const ck = decodeCheckpoint(new Uint8Array(await ex.arrayBuffer()));
    expect(ck.config.model).toBe('lstm');
    expect(ck.params).toEqual(coord.runs.get('b')!.params);

    expect(await (await call('POST', 'api/runs/b/stop')).json()).toEqual({ id: 'b', status: 'stopped' });
    expect((await call('POST', 'api/runs/b/resume')).status).toBe(409);
    const detail = await (await call('GET', 'api/runs/b')).json();
    expect(detail).toMatchObject({ status: 'stopped', config: { model: { model: 'lstm' } } });
    expect(detail.checkpoints.map((c: { step: number }) => c.step)).toEqual([0]); // stop checkpoints
    expect((await call('GET', 'api/runs/zzz')).status).toBe(404);
  });
});
