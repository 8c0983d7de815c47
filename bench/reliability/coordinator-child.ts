// Child process of the full fuzz (bench/reliability.ts): a real Coordinator alone in its process, so that a crash is
// the process exiting (nothing here catches an uncaught exception) and its memory is its own.
// IPC: parent → {type:'start', config, runId} → child {type:'ready', url, params};
//      parent → {type:'stats'} → child {type:'stats', rss, heapUsed, steps, workerRows} (rss and heap after a full GC).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../coordinator/swarm/server.ts';
import type { SwarmRun } from '../../coordinator/swarm/run.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';

export type ChildRequest = { type: 'start'; config: RunConfig; runId: string } | { type: 'stats' };
export type ChildReply = { type: 'ready'; url: string; params: number } | { type: 'stats'; rss: number; heapUsed: number; steps: number; workerRows: number };

let run: SwarmRun | undefined;
const send = (m: ChildReply) => process.send!(m);

process.on('message', async (m: ChildRequest) => {
  if (m.type === 'start') {
    const coord = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gradswarm-fuzz-')), token: 'fuzz-child-admin-token-0123456789' });
    await coord.listen();
    run = await coord.addRun(m.config, { id: m.runId });
    send({ type: 'ready', url: coord.url, params: run.layout.size });
  } else if (m.type === 'stats') {
    (globalThis as { gc?: () => void }).gc?.();
    const u = process.memoryUsage();
    send({ type: 'stats', rss: u.rss, heapUsed: u.heapUsed, steps: run?.version ?? 0, workerRows: run?.workers.size ?? 0 });
  }
});
process.on('disconnect', () => process.exit(0));
