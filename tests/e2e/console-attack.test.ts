// A run under attack, as the researcher sees it in the console: honest simulated volunteers (real gradients from
// the float64 reference model) and two attackers (NaN gradients; 1000× sign flips) train a tiny GPT; the volunteers
// table names each attacker's refusals by code and shows it banned with the reason, while the run goes on.
// CONSOLE_ATTACK_SCREENSHOT=docs/console-attack.png writes the screenshot for the docs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackByName } from '../../bench/reliability/attacks.ts';
import { SimWorker } from '../../bench/reliability/sim.ts';
import { CHROMIUM_FLAGS, chromiumPath } from '../../client/host/browser.ts';
import { Coordinator } from '../../coordinator/swarm/server.ts';
import { buildVolunteerPage } from '../../coordinator/volunteer-build.ts';
import { ROOT, tinyRun } from '../swarm/helpers.ts';

const TOKEN = `attack-${Math.random().toString(36).slice(2)}-${Date.now()}`;
let coord: Coordinator;
let browser: Browser;
const workers: SimWorker[] = [];

beforeAll(async () => {
  const staticDir = await buildVolunteerPage(ROOT);
  coord = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gs-attack-')), staticDir, token: TOKEN });
  await coord.listen();
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
}, 120_000);

afterAll(async () => {
  for (const w of workers) w.stop();
  await browser?.close();
  await coord?.close();
});

describe('console under attack', () => {
  it('shows who was refused, with the codes, and who was banned and why, while the run trains', async () => {
    // 6 batches a step for 4 honest workers: the attackers get leases every step (with 4, the honest ones, woken first
    // by each step's weights, could take them all, and the attackers would wait unrefused and unbanned)
    const config = tinyRun({ train: { max_steps: 100_000 }, swarm: { target_batch_size: 24, aggregator: 'centered_clip', ban_after: 3 } });
    await coord.addRun(config, { id: 'under-attack', name: 'under attack' });
    const url = coord.url;
    for (let i = 0; i < 4; i++) workers.push(new SimWorker({ url, runId: 'under-attack', name: `honest-${i}` }).start());
    const nan = attackByName('nan-inf');
    const flip = attackByName('sign-flip');
    workers.push(new SimWorker({ url, runId: 'under-attack', name: 'attacker-nan', onLease: nan.onLease, onSession: nan.onSession }).start());
    workers.push(new SimWorker({ url, runId: 'under-attack', name: 'attacker-flip', onLease: flip.onLease, onSession: flip.onSession }).start());

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // the run selected through the address (the runs table re-renders on every step, so a click can miss it)
    await page.goto(`${new URL('console', url).href}#run=under-attack`);
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // the NaN attacker: refused as non-finite, then banned with the reason in its row
    const row = (name: string) => page.locator('#volunteers tr', { hasText: name }).first();
    await expect.poll(async () => (await row('attacker-nan').textContent()) ?? '', { timeout: 90_000 }).toMatch(/non-finite \d+/);
    await expect.poll(async () => (await row('attacker-nan').locator('[data-banned]').count()) > 0, { timeout: 90_000 }).toBe(true);
    await expect.poll(async () => (await page.locator('#volunteers tr.ban-reason', { hasText: 'attacker-nan' }).textContent()) ?? '').toMatch(/attacker-nan banned: \d+ strikes, the last: non-finite: grads\[\d+\] is (NaN|-Infinity) \(in [a-z_.0-9]+\)/); // it sends either, in turn
    // the sign flipper: its 1000× gradients refused as outliers
    await expect.poll(async () => (await row('attacker-flip').textContent()) ?? '', { timeout: 90_000 }).toMatch(/outlier \d+/);
    // the honest volunteers are in good standing and the run goes on
    for (let i = 0; i < 4; i++) expect(await row(`honest-${i}`).textContent()).not.toMatch(/banned/);
    const run = coord.runs.get('under-attack')!;
    const before = run.version;
    await expect.poll(() => run.version, { timeout: 60_000 }).toBeGreaterThan(before + 2);
    if (process.env.CONSOLE_ATTACK_SCREENSHOT) await page.screenshot({ path: resolve(ROOT, process.env.CONSOLE_ATTACK_SCREENSHOT), fullPage: true });
    expect(errors).toEqual([]);
  }, 240_000);
});
