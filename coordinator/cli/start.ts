// `gradswarm start`: the coordinator. Serves the volunteer page, the runs' token files, socket.io and the status
// API on one port; trains the run given by --config (a run config file or a preset name; default: the small
// char-level GPT on Moby-Dick, resumed from its last checkpoint in --data-dir if there is one) and, unless
// --no-volunteer, opens one local headless Chromium volunteer on the page so the run makes progress with no
// browser open.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumPath } from '../../client/host/browser.ts';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { parseRunConfig } from '../../shared/train/run-config.ts';
import { loadCorpus } from '../data/corpus.ts';
import { Coordinator } from '../swarm/server.ts';
import { buildVolunteerPage } from '../volunteer-build.ts';
import { ROOT } from './root.ts';
import { PRESETS_DIR, listPresets } from './train.ts';

export interface StartFlags {
  port: string;
  host: string;
  dataDir: string;
  config?: string;
  runId?: string;
  volunteer: boolean;
}

export const DEFAULT_RUN = 'swarm-gpt-char';

export function readRunConfig(spec: string) {
  let path = resolve(spec);
  if (!existsSync(path)) {
    path = join(PRESETS_DIR, spec.endsWith('.json') ? spec : `${spec}.json`);
    if (!existsSync(path)) throw new Error(`config not found: ${spec} (neither a file nor a preset; presets: ${listPresets().join(', ')})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message})`);
  }
  try {
    return { path, config: parseRunConfig(json, { vocabSize: (d) => CharTokenizer.fromText(loadCorpus(d.corpus).text).size }) };
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

const stamp = () => new Date().toISOString().slice(11, 19);

export async function startCommand(o: StartFlags): Promise<void> {
  const port = Number(process.env.PORT && o.port === '8080' ? process.env.PORT : o.port);
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new Error(`--port: '${o.port}' is not a port number`);
  const log = { info: (m: string) => console.log(`[${stamp()}] ${m}`), warn: (m: string) => console.warn(`[${stamp()}] ${m}`) };
  // a config named on the command line is read (and refused with every problem) before anything starts
  const wanted = o.config ? readRunConfig(o.config) : undefined;
  const staticDir = await buildVolunteerPage(ROOT, log.info);
  const dataDir = resolve(o.dataDir);
  const coord = new Coordinator({ port, host: o.host, dataDir, staticDir, log });
  const url = await coord.listen().catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === 'EADDRINUSE' ? `port ${port} is in use: pick another with --port (or PORT=...)` : e.message);
  });
  // every run this data dir knows comes back from its newest checkpoint; a new config (or, the first time, the
  // default run) is added beside them
  const restored = await coord.restore();
  for (const r of restored) log.info(`run ${r.id}: restored at step ${r.version} (${r.status})`);
  const add = wanted ?? (coord.runs.size === 0 ? readRunConfig(DEFAULT_RUN) : undefined);
  if (add) {
    const runId = o.runId ?? basename(add.path, '.json');
    if (!coord.runs.has(runId)) await coord.addRun(add.config, { id: runId, name: runId });
    else if (wanted) log.info(`run ${runId} exists in ${dataDir}: continuing it (give --run-id for a new run with this config)`);
  }
  const a = coord.admin;
  const tokenLine =
    a.source === 'generated'
      ? `admin token: ${a.token}\n              (shown once; kept in ${a.path}, mode 0600; GRADSWARM_TOKEN overrides it)`
      : a.source === 'file'
        ? `admin token: in ${a.path}`
        : 'admin token: from GRADSWARM_TOKEN';
  console.log(
    `\n  gradswarm coordinator at ${url}\n  volunteers: open ${url} in a browser with WebGPU (Chrome, Edge)\n  console:    ${url}console/\n  ${tokenLine}\n  runs:       ${[...coord.runs.keys()].join(', ')}\n`,
  );

  let browser: Browser | undefined;
  if (o.volunteer) {
    let exe: string | undefined;
    try {
      exe = chromiumPath();
    } catch (e) {
      log.warn(`no local volunteer: ${(e as Error).message}`);
    }
    if (exe) {
      browser = await chromium.launch({ executablePath: exe, headless: true, args: CHROMIUM_FLAGS });
      const page = await browser.newPage();
      page.on('pageerror', (e) => log.warn(`local volunteer page error: ${e.message}`));
      await page.goto(url.replace('0.0.0.0', '127.0.0.1'));
      log.info('a local headless Chromium volunteer joined (--no-volunteer to train only with the browsers that connect)');
    }
  }
  const shutdown = async (sig: string) => {
    log.info(`${sig}: checkpointing and shutting down`);
    for (const r of coord.runs.values()) if (r.status === 'running' || r.status === 'paused') await r.checkpoint();
    await browser?.close().catch(() => {});
    await coord.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
