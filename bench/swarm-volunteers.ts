// The volunteers part of the swarm benchmark (bench/swarm.ts): the default run (coordinator/presets/swarm-gpt-char
// .json) trained by 1, then 2 real volunteer pages (the vite build, client/worker/loop.ts on WebGPU), each in its own
// headless Chromium as two volunteers would be, against a Coordinator in this process. Samples/s is read from the
// admin status API (/api/runs/:id: samples applied), over `seconds` after the newest volunteer has had a gradient applied.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumPath } from '../client/host/browser.ts';
import { DEFAULT_RUN, readRunConfig } from '../coordinator/cli/start.ts';
import { Coordinator } from '../coordinator/swarm/server.ts';
import { buildVolunteerPage } from '../coordinator/volunteer-build.ts';

export interface VolunteerRow {
  volunteers: number;
  seconds: number;
  /** rows applied per second over the window */
  samplesPerSec: number;
  steps: number;
  /** each volunteer's samples/s over the window (from the run's worker table) */
  perVolunteer: number[];
  params: number;
  B: number;
  T: number;
  targetBatch: number;
}

interface RunStatusJson {
  step: number;
  samples: number;
  params: number;
  workers: { workerId: string; samples: number; connected: boolean }[];
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

export async function measureVolunteers(root: string, o: { seconds: number; counts?: number[]; log: (line: string) => void }): Promise<VolunteerRow[]> {
  const counts = o.counts ?? [1, 2];
  const staticDir = await buildVolunteerPage(root, o.log);
  const { config } = readRunConfig(DEFAULT_RUN);
  const token = randomBytes(24).toString('base64url');
  const coord = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gradswarm-bench-volunteers-')), staticDir, token });
  const url = await coord.listen();
  await coord.addRun(config, { id: DEFAULT_RUN });
  const status = async (): Promise<RunStatusJson> => {
    const r = await fetch(new URL(`api/runs/${DEFAULT_RUN}`, url), { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`GET /api/runs/${DEFAULT_RUN}: HTTP ${r.status}`);
    return (await r.json()) as RunStatusJson;
  };
  const browsers: Browser[] = [];
  const rows: VolunteerRow[] = [];
  try {
    for (const n of counts) {
      while (browsers.length < n) {
        const b = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
        browsers.push(b);
        const page = await b.newPage();
        const k = browsers.length;
        page.on('pageerror', (e) => o.log(`volunteer ${k}: page error: ${e.message}`));
        await page.goto(url);
      }
      // warm: every volunteer has had a gradient applied (its pipelines are compiled), then one more step
      const deadline = Date.now() + 300_000;
      for (;;) {
        const s = await status();
        const live = s.workers.filter((w) => w.connected);
        if (live.length >= n && live.every((w) => w.samples > 0)) break;
        if (Date.now() > deadline) throw new Error(`${n} volunteer(s): not every page had a gradient applied within 300 s (${live.length} connected)`);
        await sleep(1000);
      }
      const warm = (await status()).step;
      while ((await status()).step <= warm) await sleep(250);
      const a = await status();
      const t0 = performance.now();
      await sleep(o.seconds * 1000);
      const b = await status();
      const secs = (performance.now() - t0) / 1000;
      const per = b.workers.filter((w) => w.connected).map((w) => (w.samples - (a.workers.find((x) => x.workerId === w.workerId)?.samples ?? 0)) / secs);
      const row: VolunteerRow = {
        volunteers: n,
        seconds: secs,
        samplesPerSec: (b.samples - a.samples) / secs,
        steps: b.step - a.step,
        perVolunteer: per,
        params: b.params,
        B: config.data.batch_size,
        T: config.data.block_size,
        targetBatch: config.swarm.target_batch_size,
      };
      o.log(`${n} volunteer(s): ${row.samplesPerSec.toFixed(1)} samples/s over ${secs.toFixed(0)} s (${row.steps} steps; per volunteer ${per.map((x) => x.toFixed(1)).join(', ')})`);
      rows.push(row);
    }
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    await coord.close();
  }
  return rows;
}
