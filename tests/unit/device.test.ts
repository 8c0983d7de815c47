// Device acquisition explains each failure in words a volunteer can act on.
import { describe, expect, it } from 'vitest';
import { acquireDevice, GpuUnavailableError } from '../../client/runtime/device.ts';

const limits = { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 } as GPUSupportedLimits;

describe('acquireDevice', () => {
  it('says plainly when the browser has no WebGPU', async () => {
    await expect(acquireDevice(undefined)).rejects.toThrow(/no WebGPU \(navigator.gpu is missing\)/);
  });
  it('says when WebGPU offers no adapter', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(acquireDevice(gpu)).rejects.toThrow(/offered no GPU adapter/);
  });
  it('names the limit that is too small for the requested size', async () => {
    const adapter = { limits, features: new Set() } as unknown as GPUAdapter;
    const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
    const err = await acquireDevice(gpu, { maxBufferBytes: 300 << 20 }).catch((e) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect(err.message).toMatch(/needs a 300 MiB buffer but this GPU allows at most 128 MiB per buffer/);
  });
  it('reports a device refused by the adapter', async () => {
    const adapter = { limits, features: new Set(), requestDevice: async () => { throw new Error('limit exceeded'); } } as unknown as GPUAdapter;
    const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
    await expect(acquireDevice(gpu)).rejects.toThrow(/refused to create a device: limit exceeded/);
  });
});
