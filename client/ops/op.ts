// A GPU op: the encode side of one row of the op table. Forward returns its outputs (and whatever backward
// needs, under the names in OpSpec.saved); backward returns grads keyed by canonical input name. Both only
// record dispatches; the caller decides when to submit and what to read back.
import type { OpOptions } from '../../shared/ops.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';

export type GpuTensors = Record<string, GpuTensor>;

export interface GpuOp {
  name: string;
  forward(g: Gpu, inputs: GpuTensors, options: OpOptions): GpuTensors;
  backward?(g: Gpu, inputs: GpuTensors, options: OpOptions, outputs: GpuTensors, gradOutputs: GpuTensors): GpuTensors;
}

/** what each family file exports: its kernels (for the registry) and its ops */
export interface OpFamily {
  kernels: KernelDef[];
  ops: GpuOp[];
}
