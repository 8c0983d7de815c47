// The volunteer page as a volunteer meets it (the vite build served by an in-process coordinator, headless Chromium
// on SwiftShader), checked through the DOM:
//  - it names the GPU, the run and the model, counts steps contributed, charts the run's loss (seeded from the
//    status API, extended by progress events); Pause stops new work and Resume restarts it; the GPU share and
//    "pause while this tab is hidden" survive a reload, and the latter backs off while the tab is hidden; a lost
//    GPU is said in words with a Reload button that brings the page back; closing the tab releases its leases.
//  - without WebGPU (navigator.gpu missing, no adapter, an insecure origin) it says plainly what to do.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, chromiumPath } from '../../client/host/browser.ts';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { buildVolunteerPage } from '../../coordinator/volunteer-build.ts';
import { ROOT, sleep, startCoordinator, tinyRun } from '../swarm/helpers.ts';

// an insecure origin for the same server: WebGPU is offered to https and to localhost / 127.0.0.1 only
const INSECURE_HOST = 'volunteer.test';

let coord: Coordinator;
let browser: Browser;

beforeAll(async () => {
  const staticDir = await buildVolunteerPage(ROOT);
  coord = await startCoordinator({ staticDir });
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_FLAGS, `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await coord?.close();
});

/** a page in a fresh context (its own localStorage), failing the test on any uncaught page error */
async function openPage(url = coord.url, init?: () => void) {
  const context = await browser.newContext();
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { page, context, errors };
}

const text = async (page: Page, id: string) => (await page.locator(`#${id}`).textContent()) ?? '';
const count = async (page: Page, id: string) => Number((await text(page, id)).replace(/,/g, ''));
const state = (page: Page) => page.locator('#status').getAttribute('data-state');
const chartPoints = async (page: Page) => Number(await page.locator('#chart').getAttribute('data-points'));
const valPoints = async (page: Page) => Number(await page.locator('#chart').getAttribute('data-val-points'));

describe('volunteer page', () => {
  it('shows the GPU, run and model, contributes steps, charts the loss, pauses and resumes, remembers choices, says when the GPU is lost', async () => {
    // long enough that it is still running when the test is done
    const run = await coord.addRun(tinyRun({ train: { max_steps: 5000, eval_interval: 5, eval_batches: 2 }, swarm: { target_batch_size: 8 } }), { id: 'tiny-page', name: 'tiny page run' });
    const { page, context, errors } = await openPage();

    await expect.poll(() => text(page, 'gpu'), { timeout: 30_000 }).toMatch(/swiftshader/i);
    await expect.poll(() => text(page, 'run'), { timeout: 30_000 }).toBe('tiny page run');
    await expect.poll(() => text(page, 'model'), { timeout: 10_000 }).toMatch(/^GPT: .* parameters \(1 layer, 2 heads, width 16, context 16 characters\)$/);

    // it works: steps contributed and samples go up, the run's step and loss show, the chart fills
    await expect.poll(() => count(page, 'steps'), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    expect(await text(page, 'step')).toMatch(/^\d+ \/ 5000$/);
    expect(Number(await text(page, 'loss'))).toBeGreaterThan(0);
    await expect.poll(() => chartPoints(page), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    await expect.poll(() => valPoints(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => text(page, 'rate'), { timeout: 10_000 }).toMatch(/^\d+(\.\d)?$/);

    // pause: once the page says paused, no new samples for 3 s
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => state(page), { timeout: 20_000 }).toBe('paused');
    await expect(page.locator('#status').textContent()).resolves.toMatch(/Paused\. Press Resume/);
    const pausedAt = await count(page, 'samples');
    await sleep(3000);
    expect(await count(page, 'samples')).toBe(pausedAt);
    expect(await state(page)).toBe('paused');

    // resume: samples go up again
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => count(page, 'samples'), { timeout: 20_000 }).toBeGreaterThan(pausedAt);

    // the GPU share (slider, with the keyboard) and the hidden-tab choice are remembered across a reload
    const slider = page.getByRole('slider', { name: /GPU share/ });
    await slider.focus();
    for (let i = 0; i < 6; i++) await slider.press('ArrowLeft');
    expect(await slider.inputValue()).toBe('40');
    expect(await text(page, 'duty-value')).toBe('40 %');
    await page.getByLabel('Pause while this tab is hidden').check();
    await page.reload();
    await expect.poll(() => text(page, 'gpu'), { timeout: 30_000 }).toMatch(/swiftshader/i);
    expect(await page.getByRole('slider', { name: /GPU share/ }).inputValue()).toBe('40');
    expect(await text(page, 'duty-value')).toBe('40 %');
    expect(await page.getByLabel('Pause while this tab is hidden').isChecked()).toBe(true);
    // the chart is seeded from the run's history on joining
    await expect.poll(() => chartPoints(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);

    // with that box ticked, the page backs off while the tab is hidden and comes back when it is shown
    const setVisibility = (v: 'hidden' | 'visible') =>
      page.evaluate((v) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => v });
        document.dispatchEvent(new Event('visibilitychange'));
      }, v);
    await expect.poll(() => state(page), { timeout: 30_000 }).toBe('working');
    await setVisibility('hidden');
    await expect.poll(() => text(page, 'status'), { timeout: 20_000 }).toBe('Paused while this tab is hidden.');
    const hiddenAt = await count(page, 'samples');
    await setVisibility('visible');
    await expect.poll(() => count(page, 'samples'), { timeout: 20_000 }).toBeGreaterThan(hiddenAt);

    // the GPU goes away: the page says so and offers a reload that brings it back
    await page.evaluate(() => (window as unknown as { gradswarm: { gpu: { device: GPUDevice } } }).gradswarm.gpu.device.destroy());
    await expect.poll(() => state(page), { timeout: 10_000 }).toBe('lost');
    expect(await page.getByRole('heading', { name: 'Your GPU stopped working for this page' }).isVisible()).toBe(true);
    expect(await text(page, 'problem-text')).toMatch(/GPU device was lost.*Reload to start again/);
    expect(await page.getByRole('button', { name: 'Pause' }).isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => text(page, 'run'), { timeout: 30_000 }).toBe('tiny page run');
    expect(await page.locator('#problem').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Pause' }).isVisible()).toBe(true);

    // closing the tab releases its leases at once (no lease timeout to wait for)
    await expect.poll(() => run.connectedWorkers, { timeout: 10_000 }).toBe(1);
    await context.close();
    await expect.poll(() => run.connectedWorkers, { timeout: 10_000 }).toBe(0);
    expect(run.outstanding).toBe(0);
    expect(errors).toEqual([]);
  }, 120_000);

  it('without WebGPU it says plainly what to do', async () => {
    const cases: { url: string; init?: () => void; state: string; title: string; text: RegExp; button?: string }[] = [
      {
        url: coord.url,
        init: () => void delete (Navigator.prototype as { gpu?: unknown }).gpu,
        state: 'no-webgpu',
        title: 'Your browser has no WebGPU',
        text: /current Chrome or Edge.*chrome:\/\/flags\/#enable-unsafe-webgpu/,
      },
      {
        url: coord.url,
        init: () => {
          GPU.prototype.requestAdapter = async () => null;
        },
        state: 'no-adapter',
        title: 'Your browser did not offer a GPU',
        text: /chrome:\/\/gpu/,
        button: 'Try again',
      },
      {
        url: coord.url.replace('127.0.0.1', INSECURE_HOST),
        state: 'insecure',
        title: 'This page must be opened over a secure address',
        text: new RegExp(`https://.*http://localhost:${new URL(coord.url).port}/`),
      },
    ];
    for (const c of cases) {
      const { page, context, errors } = await openPage(c.url, c.init);
      await expect.poll(() => state(page), { timeout: 20_000 }).toBe(c.state);
      expect(await text(page, 'status')).toBe(c.title);
      expect(await text(page, 'problem-title')).toBe(c.title);
      expect(await text(page, 'problem-text')).toMatch(c.text);
      expect(await page.locator('#work').isVisible()).toBe(false);
      if (c.button) expect(await page.getByRole('button', { name: c.button }).isVisible()).toBe(true);
      else expect(await page.locator('#reload').isVisible()).toBe(false);
      expect(errors).toEqual([]);
      await context.close();
    }
  }, 60_000);
});
