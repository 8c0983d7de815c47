// Headless Chromium with WebGPU, driven by playwright-core, serving one bundled entry from 127.0.0.1
// (WebGPU is offered to secure origins only; localhost counts). Used by the op runner, the kernel check,
// the GPU tests and the benchmarks.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { bundleForBrowser } from './bundle.ts';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(existsSync);
  if (!p || !existsSync(p)) {
    throw new Error('No Chromium found: install it (Debian: apt-get install -y chromium) or set CHROMIUM_PATH to a Chrome/Chromium binary.');
  }
  return p;
}

export interface BrowserPage {
  page: Page;
  url: string;
  close(): Promise<void>;
}

/** serve `entry` bundled on a fresh 127.0.0.1 port and open it in headless Chromium */
export async function openBrowserPage(
  entry: string,
  opts: {
    log?: (line: string) => void;
    /** extra binary routes served beside the page (path → bytes, read at request time), e.g. a token array */
    routes?: Map<string, () => Uint8Array | undefined>;
  } = {},
): Promise<BrowserPage> {
  const js = await bundleForBrowser(entry);
  const html = '<!doctype html><meta charset="utf-8"><title>gradswarm</title><script type="module" src="/main.js"></script>';
  const server: Server = createServer((req, res) => {
    if (req.url === '/main.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else if (req.url === '/' || req.url === '/index.html') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else {
      const bytes = req.url ? opts.routes?.get(req.url)?.() : undefined;
      if (bytes) res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength }).end(bytes);
      else res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
  } catch (e) {
    server.close();
    throw e;
  }
  const close = async () => {
    await browser.close();
    await new Promise((ok) => server.close(ok));
  };
  const pageErrors: string[] = [];
  let page: Page;
  try {
    page = await browser.newPage();
    page.on('console', (m) => opts.log?.(`[browser ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => {
      pageErrors.push(e.message);
      opts.log?.(`[browser error] ${e.message}`);
    });
    await page.goto(url);
    await page.waitForFunction(() => 'gradswarm' in window, null, { timeout: 30_000 });
  } catch (e) {
    // do not leave Chromium and the server running; say why the page did not start if it said so
    await close().catch(() => {});
    throw new Error(`the gradswarm page did not start in Chromium: ${pageErrors.length ? pageErrors.join('; ') : (e as Error).message}`);
  }
  return {
    page,
    url,
    close,
  };
}
