// The checkout's root directory (for files the CLI serves or bundles), injected by coordinator/gradswarm.mjs;
// under vitest it falls back to the working directory.
declare const __GRADSWARM_ROOT__: string | undefined;
export const ROOT: string = typeof __GRADSWARM_ROOT__ === 'string' ? __GRADSWARM_ROOT__ : process.cwd();
