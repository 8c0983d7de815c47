import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vitest/config';

// WGSL files import as their source text, as esbuild's `text` loader does for the bundles.
const wgsl: Plugin = {
  name: 'wgsl-text',
  load(id) {
    if (id.endsWith('.wgsl')) return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
};

export default defineConfig({
  plugins: [wgsl],
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // two cores: GPU test files each drive their own Chromium on SwiftShader; more in parallel only thrashes
    maxWorkers: 2,
    fileParallelism: true,
    // lets the Node runtime test force garbage collections (the Dawn crash it guards against is GC-triggered)
    execArgv: ['--expose-gc'],
  },
});
