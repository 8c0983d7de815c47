// Opening a Gpu context with every registered kernel, in a browser or in Node (Dawn).
import { KERNELS } from '../kernels.ts';
import { acquireDevice, type AcquireOptions } from './device.ts';
import { Gpu } from './gpu.ts';

export async function openGpu(gpu: GPU | undefined, opts: AcquireOptions = {}, keepAlive: unknown[] = []): Promise<Gpu> {
  const acq = await acquireDevice(gpu, opts);
  return new Gpu(acq, KERNELS, [gpu, ...keepAlive]);
}
