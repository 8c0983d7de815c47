/** gradsum.wat as WebAssembly bytes */
export function assembleGradsum(): Promise<Uint8Array>;
/** the text of gradsum-wasm.ts for those bytes */
export function gradsumModule(bytes: Uint8Array): string;
