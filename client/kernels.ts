// The kernel registry: every WGSL entry point gradswarm dispatches, family by family. A reader sees the
// whole set here; `npx gradswarm kernels` prints it.
import source from '../shaders/util.wgsl';
import { FAMILIES } from './ops/index.ts';
import { kernels, type KernelDef } from './runtime/kernel.ts';

const util: KernelDef[] = kernels('util.wgsl', source, { fill: ['rw'] });

export const KERNELS: KernelDef[] = [...util, ...FAMILIES.flatMap((f) => f.kernels)];
