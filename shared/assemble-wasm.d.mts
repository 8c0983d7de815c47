export interface WasmKernel {
  wat: string;
  out: string;
  name: string;
}
/** every kernel: its .wat, the generated module, and the constant it exports (paths from the repository root) */
export const KERNELS: WasmKernel[];
/** a .wat (path from the repository root) as WebAssembly bytes */
export function assembleWat(wat: string): Promise<Uint8Array>;
/** the generated module's text for a kernel's bytes */
export function wasmModule(kernel: WasmKernel, bytes: Uint8Array): string;
