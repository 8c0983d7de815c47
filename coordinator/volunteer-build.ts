// Builds the volunteer page (client/volunteer/index.html) with vite into node_modules/.cache/gradswarm/volunteer,
// redone only when a client/shared/shaders source or package-lock.json is newer than the last build. The coordinator serves the result.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** builds if stale; returns the folder with index.html */
export async function buildVolunteerPage(root: string, log: (line: string) => void = () => {}): Promise<string> {
  const outDir = join(root, 'node_modules', '.cache', 'gradswarm', 'volunteer');
  const stamp = join(outDir, 'index.html');
  const lock = join(root, 'package-lock.json');
  const src = Math.max(existsSync(lock) ? statSync(lock).mtimeMs : 0, ...['client', 'shared', 'shaders'].map((d) => newest(join(root, d))));
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= src) return outDir;
  log('building the volunteer page (vite)…');
  const { build } = await import('vite');
  await build({
    root: join(root, 'client', 'volunteer'),
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
    build: { outDir, emptyOutDir: true, target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 2000 },
  });
  return outDir;
}
