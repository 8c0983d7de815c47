// A kernel is one WGSL entry point with its binding layout. Convention for every shader in shaders/:
// binding 0 is the `params` uniform struct (u32 fields first, then f32 fields), bindings 1.. are storage
// buffers in the order listed here. Tile and workgroup sizes are WGSL `override` constants.
export type BindingKind = 'read' | 'rw';

export interface KernelDef {
  /** unique name, e.g. 'matmul_tiled' */
  name: string;
  /** file name under shaders/, for messages and docs */
  file: string;
  /** the WGSL source of that file */
  source: string;
  entry: string;
  /** storage bindings 1..n; binding 0 is always the params uniform */
  bindings: BindingKind[];
}

export function kernels(file: string, source: string, defs: Record<string, BindingKind[]>): KernelDef[] {
  return Object.entries(defs).map(([entry, bindings]) => ({ name: entry, file, source, entry, bindings }));
}
