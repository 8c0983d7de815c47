// WGSL files are imported as source strings (esbuild's `text` loader, and the vite plugin in vitest.config.ts).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
