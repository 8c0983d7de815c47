// Builds the coordinator's two pages with one vite build (root client/) into node_modules/.cache/gradswarm/pages:
//   index.html          the volunteer page (client/volunteer/index.html), served at /
//   console/index.html  the researcher's console (client/console/index.html), served at /console/
//   assets/…            both pages' hashed scripts and styles (base '/', so the HTML files use absolute URLs)
// vite names each HTML output by its path under the root (volunteer/index.html); the volunteer page is moved up to
// the root after the build, which its absolute asset URLs allow. Redone only when a client/shared/shaders source or
// package-lock.json is newer than the last build. The coordinator serves the result.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** the console's HTML file, relative to the build's folder */
export const CONSOLE_HTML = join('console', 'index.html');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** builds both pages if stale; returns the folder with index.html (the volunteer page) and console/index.html */
export async function buildVolunteerPage(root: string, log: (line: string) => void = () => {}): Promise<string> {
  const outDir = join(root, 'node_modules', '.cache', 'gradswarm', 'pages');
  const stamps = [join(outDir, 'index.html'), join(outDir, CONSOLE_HTML)];
  const lock = join(root, 'package-lock.json');
  const src = Math.max(existsSync(lock) ? statSync(lock).mtimeMs : 0, ...['client', 'shared', 'shaders'].map((d) => newest(join(root, d))));
  if (stamps.every((s) => existsSync(s) && statSync(s).mtimeMs >= src)) return outDir;
  log('building the volunteer page and the console (vite)…');
  const client = join(root, 'client');
  const { build } = await import('vite');
  await build({
    root: client,
    base: '/',
    logLevel: 'warn',
    configFile: false,
    plugins: [
      {
        name: 'wgsl-text',
        load(id: string) {
          if (id.endsWith('.wgsl')) return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
        },
      },
    ],
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 2000,
      rollupOptions: { input: { volunteer: join(client, 'volunteer', 'index.html'), console: join(client, 'console', 'index.html') } },
    },
  });
  renameSync(join(outDir, 'volunteer', 'index.html'), join(outDir, 'index.html'));
  rmSync(join(outDir, 'volunteer'), { recursive: true, force: true });
  return outDir;
}
