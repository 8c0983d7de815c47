// Bundles a browser entry (TypeScript + WGSL) in memory with esbuild, for the pages Node serves to Chromium.
import { build } from 'esbuild';

export async function bundleForBrowser(entry: string): Promise<string> {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    loader: { '.wgsl': 'text' },
    sourcemap: 'inline',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return r.outputFiles[0].text;
}

/**
 * Bundles Node entries (name → .ts path) into `outdir` as <name>.mjs, as the CLI launcher bundles itself, for
 * child processes (a child cannot load .ts). Packages stay external; returns name → bundled path.
 */
export async function bundleForNode(root: string, entries: Record<string, string>, outdir: string): Promise<Record<string, string>> {
  await build({
    entryPoints: entries,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    packages: 'external',
    loader: { '.wgsl': 'text' },
    sourcemap: 'inline',
    logLevel: 'warning',
    define: { __GRADSWARM_ROOT__: JSON.stringify(root) },
  });
  return Object.fromEntries(Object.keys(entries).map((k) => [k, `${outdir}/${k}.mjs`]));
}
