// The kernel registry: every WGSL entry point gradswarm dispatches, family by family. A reader sees the
// whole set here; `npx gradswarm kernels` prints it.
import source from '../shaders/util.wgsl';
import layoutSource from '../shaders/layout.wgsl';
import { FAMILIES } from './ops/index.ts';
import { kernels, type KernelDef } from './runtime/kernel.ts';

const util: KernelDef[] = [
  ...kernels('util.wgsl', source, { fill: ['rw'] }),
  // (B·T, P·C) rows <-> (B, H, T, D) heads permutes: GPT's q, k, v split and head merge (client/models/gpt.ts)
  ...kernels('layout.wgsl', layoutSource, { rows_to_heads: ['read', 'rw', 'rw', 'rw'], heads_to_rows: ['read', 'read', 'read', 'rw'] }),
];

export const KERNELS: KernelDef[] = [...util, ...FAMILIES.flatMap((f) => f.kernels)];
