#!/usr/bin/env node
// The `gradswarm` command. The CLI is TypeScript (coordinator/cli/main.ts); this launcher bundles it with
// esbuild into node_modules/.cache (about 100 ms, redone when any source is newer) and runs it.
import { build } from 'esbuild';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, 'node_modules', '.cache', 'gradswarm', 'cli.mjs');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const sources = ['coordinator', 'client', 'shared', 'shaders', 'bench'].map((d) => join(root, d)).filter(existsSync);
if (!existsSync(out) || Math.max(...sources.map(newest)) > statSync(out).mtimeMs) {
  await build({
    entryPoints: [join(root, 'coordinator', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    packages: 'external',
    loader: { '.wgsl': 'text' },
    sourcemap: 'inline',
    logLevel: 'warning',
    define: { __GRADSWARM_ROOT__: JSON.stringify(root) },
  });
}
await import(pathToFileURL(out).href);
