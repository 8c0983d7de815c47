// The researcher's console as a researcher meets it: the one vite build served by an in-process coordinator (with an
// admin token), headless Chromium, checked through the DOM. A wrong token is refused in words, the right one signs in
// and survives a reload (sessionStorage); a bad config lists its problems by path, a good one creates a run; two
// volunteer pages (the / page, on SwiftShader) join it, and the loss chart, the volunteers table and the
// leaderboard fill; a second run shows in the list and can be selected; pause, resume, weight and stop act on the
// coordinator; the checkpoint downloads as safetensors with PyTorch names; sign out forgets the token.
// CONSOLE_SCREENSHOT=docs/console.png saves the dashboard with the run in progress there (else to a temp file).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, chromiumPath } from '../../client/host/browser.ts';
import { Coordinator } from '../../coordinator/swarm/server.ts';
import { buildVolunteerPage } from '../../coordinator/volunteer-build.ts';
import { ROOT, tinyRun } from '../swarm/helpers.ts';

const TOKEN = `console-${Math.random().toString(36).slice(2)}-${Date.now()}`;
const SCREENSHOT = resolve(ROOT, process.env.CONSOLE_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), 'gs-console-')), 'console.png'));

let coord: Coordinator;
let browser: Browser;

beforeAll(async () => {
  const staticDir = await buildVolunteerPage(ROOT);
  coord = new Coordinator({ port: 0, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'gs-console-data-')), staticDir, token: TOKEN });
  await coord.listen();
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await coord?.close();
});

const text = async (page: Page, sel: string) => ((await page.locator(sel).textContent()) ?? '').trim();
const rows = (page: Page, sel: string) => page.locator(`${sel} tr`).count();
const runRow = (page: Page, id: string) => page.locator(`#runs tr[data-run="${id}"]`);
const runStatus = (page: Page, id: string) => runRow(page, id).locator('.badge').getAttribute('data-status');

describe('console', () => {
  it('signs in, creates runs, follows one live with two volunteers, pauses, resumes, re-weights, exports and stops it', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept()); // Stop asks first
    await page.goto(new URL('console', coord.url).href);

    // a wrong token is refused in words; the right one signs in and survives a reload
    await expect.poll(() => page.locator('#sign-in').isVisible(), { timeout: 20_000 }).toBe(true);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => text(page, '#sign-in-error')).toMatch(/token is wrong/);
    expect(await page.locator('#app').isVisible()).toBe(false);
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
    expect(await page.locator('#no-runs').isVisible()).toBe(true);
    await page.reload();
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
    await expect.poll(() => text(page, '#live')).toBe('live');

    // the form opens with a valid example; a bad config lists every problem by path, live and on Create
    const config = page.getByLabel(/^Config/);
    await expect.poll(() => text(page, '#config-state')).toBe('The config is valid.');
    const good = tinyRun({ train: { max_steps: 5000, eval_interval: 5, eval_batches: 2 }, swarm: { target_batch_size: 8 } });
    await config.fill(JSON.stringify({ ...good, train: { ...good.train, max_steps: 0 }, data: { ...good.data, batch_size: -1 }, optim: { ...good.optim, lrr: 1 } }, null, 2));
    await expect.poll(() => page.locator('#problems li').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^train\.max_steps: /), expect.stringMatching(/^data\.batch_size: /), expect.stringMatching(/^optim\.lrr: /)]),
    );
    await page.getByRole('button', { name: 'Create run' }).click();
    await expect.poll(() => text(page, '#config-state')).toMatch(/invalid run config/);
    expect(await page.locator('#problems li').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^train\.max_steps: /)]));
    expect(coord.runs.size).toBe(0);
    await config.fill(configText(good));
    await expect.poll(() => text(page, '#config-state')).toBe('The config is valid.');
    await page.getByLabel('Id').fill('console-run');
    await page.getByLabel('Name').fill('console run');
    await page.getByRole('button', { name: 'Create run' }).click();
    await expect.poll(() => runRow(page, 'console-run').count()).toBe(1);
    await expect.poll(() => text(page, '#run-title')).toMatch(/^console run/);
    const run = coord.runs.get('console-run')!;
    expect(run.maxSteps).toBe(5000);

    // two volunteers (the / page) join; the charts, the volunteers table and the leaderboard fill
    const volunteers = await browser.newContext();
    for (let i = 0; i < 2; i++) await (await volunteers.newPage()).goto(coord.url);
    await expect.poll(() => rows(page, '#volunteers'), { timeout: 60_000 }).toBe(2);
    await expect.poll(async () => Number(await page.locator('#loss-chart').getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThanOrEqual(8);
    expect(Number(await page.locator('#rate-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(8);
    expect(Number(await page.locator('#time-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(8);
    await expect.poll(() => text(page, '#f-val')).toMatch(/^\d+\.\d{3}$/);
    expect(await text(page, '#breakdown')).toMatch(/compute \d+ ms, wait \d+ ms, aggregate \d+ ms/);
    await expect.poll(() => page.locator('#volunteers tr .dot.on').count(), { timeout: 10_000 }).toBe(2);
    expect(await page.locator('#volunteers tr td:first-child').allTextContents()).toEqual(['browser', 'browser']);
    expect(await page.locator('#volunteers tr td.adapter').first().textContent()).toMatch(/swiftshader/i);
    await expect.poll(() => page.locator('#leaderboard li').count(), { timeout: 10_000 }).toBe(2);
    expect(await text(page, '#f-workers')).toBe('2');

    // a second run shows in the list and can be selected; back to the first
    await page.getByLabel('Id').fill('second');
    await config.fill(configText(tinyRun({ train: { max_steps: 3000 }, swarm: { target_batch_size: 8 } })));
    await page.getByRole('button', { name: 'Create run' }).click();
    await expect.poll(() => text(page, '#run-title')).toMatch(/^second/);
    expect(await rows(page, '#runs')).toBe(2);
    expect(await text(page, '#f-step')).toMatch(/^\d+ \/ 3000$/);
    await runRow(page, 'console-run').getByRole('button').click();
    await expect.poll(() => text(page, '#run-title')).toMatch(/^console run/);
    await page.locator('#new-run summary').click(); // fold the form away for the picture
    await expect.poll(async () => Number(await page.locator('#loss-chart').getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThanOrEqual(12);
    await expect.poll(() => rows(page, '#volunteers'), { timeout: 10_000 }).toBe(2);
    await page.screenshot({ path: SCREENSHOT });

    // pause, resume, weight
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => runStatus(page, 'console-run')).toBe('paused');
    expect(run.status).toBe('paused');
    expect(await page.locator('#f-status .badge').getAttribute('data-status')).toBe('paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => runStatus(page, 'console-run')).toBe('running');
    expect(run.status).toBe('running');
    await page.getByLabel('Weight').fill('3');
    await page.getByRole('button', { name: 'Set' }).click();
    await expect.poll(() => text(page, '#runs tr[data-run="console-run"] td:last-child')).toBe('3');
    expect(run.config.swarm.weight).toBe(3);

    // the checkpoint downloads: safetensors (u64 LE header length, JSON header) under PyTorch's names
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download checkpoint' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^console-run-step\d+\.safetensors$/);
    const bytes = readFileSync((await download.path())!);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[] }>;
    expect(header['transformer.wte.weight'].shape).toEqual([good.model.vocab_size, 16]);
    expect(await text(page, '#download')).toMatch(/console-run-step\d+\.safetensors/);

    // stop: the run ends; its volunteers move to the other run
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => runStatus(page, 'console-run')).toBe('stopped');
    expect(run.status).toBe('stopped');
    expect(await page.getByRole('button', { name: 'Pause' }).isDisabled()).toBe(true);
    await expect.poll(() => coord.runs.get('second')!.connectedWorkers, { timeout: 30_000 }).toBe(2);

    // sign out forgets the token
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.locator('#sign-in').isVisible()).toBe(true);
    await page.reload();
    await expect.poll(() => page.locator('#sign-in').isVisible()).toBe(true);
    expect(await page.locator('#app').isVisible()).toBe(false);

    expect(errors).toEqual([]);
    await volunteers.close();
    await context.close();
  }, 240_000);
});

/** the config as the form would hold it */
function configText(c: object): string {
  return JSON.stringify(c, null, 2);
}
