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
