// `gradswarm run …`: a researcher's commands against a running coordinator, over its admin API (docs/swarm.md).
// The token comes from --token, GRADSWARM_TOKEN, or the admin-token file of --data-dir (default ./gradswarm-data,
// what `gradswarm start` made on this machine). A coordinator that is down or a wrong token gets a plain message.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TOKEN_FILE } from '../swarm/auth.ts';
import type { RunSummary } from '../swarm/server.ts';

export interface RunFlags {
  coordinator: string;
  token?: string;
  dataDir: string;
}

interface Client {
  base: URL;
  call(method: string, path: string, body?: unknown): Promise<Response>;
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
}

function client(o: RunFlags): Client {
  let base: URL;
  try {
    base = new URL(o.coordinator.endsWith('/') ? o.coordinator : `${o.coordinator}/`);
  } catch {
    throw new Error(`--coordinator: '${o.coordinator}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  let token = o.token ?? process.env.GRADSWARM_TOKEN;
  let source = o.token ? '--token' : 'GRADSWARM_TOKEN';
  if (!token) {
    const file = join(resolve(o.dataDir), TOKEN_FILE);
    if (existsSync(file)) {
      token = readFileSync(file, 'utf8').trim();
      source = file;
    }
  }
  if (!token) throw new Error(`no admin token: pass --token, set GRADSWARM_TOKEN, or run where the coordinator's --data-dir is (looked for ${join(resolve(o.dataDir), TOKEN_FILE)})`);
  const call = async (method: string, path: string, body?: unknown) => {
    let r: Response;
    try {
      r = await fetch(new URL(path, base), {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      throw new Error(`no coordinator at ${base.href}${code ? ` (${code})` : ''}: start one with \`npx gradswarm start\`, or point --coordinator at it`);
    }
    if (r.status === 401) throw new Error(`the coordinator at ${base.href} refused the admin token from ${source}: ${(await r.json().catch(() => ({}))).error ?? 'unauthorized'}`);
    return r;
  };
  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await call(method, path, body);
    const out = (await r.json().catch(() => ({ error: `HTTP ${r.status}` }))) as T & { error?: string; problems?: string[] };
    if (!r.ok) throw new Error(out.problems ? `${out.error}:\n  ${out.problems.join('\n  ')}` : (out.error ?? `HTTP ${r.status}`));
    return out;
  };
  return { base, call, json };
}

type Summary = RunSummary;

const f4 = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(4));

export async function runCreate(file: string, o: RunFlags & { id?: string; name?: string }): Promise<void> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`no such file: ${file}`);
  let config: { data?: { corpus?: string } };
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  // a corpus path relative to the config file means that file here: send it absolute
  const corpus = config?.data?.corpus;
  if (typeof corpus === 'string' && corpus !== 'moby-dick' && !corpus.startsWith('/')) {
    const here = resolve(dirname(path), corpus);
    if (existsSync(here)) config.data!.corpus = here;
  }
  const s = await client(o).json<Summary>('POST', 'api/runs', { id: o.id, name: o.name, config });
  console.log(`created run ${s.id}: ${s.model}, ${s.params} parameters, ${s.maxSteps} steps (${s.status})`);
}

export async function runList(o: RunFlags): Promise<void> {
  const runs = await client(o).json<Summary[]>('GET', 'api/runs');
  if (!runs.length) return console.log('no runs');
  const rows = [['id', 'status', 'model', 'step', 'loss', 'val', 'tok/s', 'workers', 'weight'], ...runs.map((r) => [r.id, r.status, r.model, `${r.step}/${r.maxSteps}`, f4(r.loss), f4(r.valLoss), String(Math.round(r.tokensPerSec)), String(r.workers), String(r.weight)])];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
}

export async function runStatus(id: string, o: RunFlags & { once?: boolean; interval: string }): Promise<void> {
  const c = client(o);
  const tty = process.stdout.isTTY === true && !o.once;
  const every = Math.max(200, Number(o.interval) * 1000 || 1000);
  for (;;) {
    const r = await c.json<Summary & { workers: unknown[] }>('GET', `api/runs/${encodeURIComponent(id)}`);
    const connected = (r.workers as { connected: boolean }[]).filter((w) => w.connected).length;
    const width = 24;
    const fill = Math.round((width * r.step) / Math.max(1, r.maxSteps));
    const line = `${r.id} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] step ${r.step}/${r.maxSteps} ${r.status} samples ${r.samples} loss ${f4(r.loss)} val ${f4(r.valLoss)} ${Math.round(r.tokensPerSec)} tok/s ${connected} worker(s)`;
    if (!tty) {
      console.log(line);
      if (o.once || r.status === 'done' || r.status === 'stopped') return;
    } else {
      process.stdout.write(`\r${line}\x1b[K`);
      if (r.status === 'done' || r.status === 'stopped') {
        process.stdout.write('\n');
        return;
      }
    }
    await new Promise((ok) => setTimeout(ok, every));
  }
}

export async function runControl(action: 'pause' | 'resume' | 'stop', id: string, o: RunFlags): Promise<void> {
  const r = await client(o).json<{ id: string; status: string }>('POST', `api/runs/${encodeURIComponent(id)}/${action}`);
  console.log(`run ${r.id}: ${r.status}`);
}

export async function runExport(id: string, o: RunFlags & { out: string }): Promise<void> {
  const r = await client(o).call('GET', `api/runs/${encodeURIComponent(id)}/export`);
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error ?? `HTTP ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  writeFileSync(o.out, bytes);
  const name = /filename="([^"]+)"/.exec(r.headers.get('content-disposition') ?? '')?.[1];
  console.log(`wrote ${o.out} (${bytes.byteLength} bytes${name ? `, ${name}` : ''}): load it in PyTorch with safetensors.torch.load_file`);
}
