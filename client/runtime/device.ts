// Device acquisition that explains failures in words a volunteer or researcher can act on.

export class GpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuUnavailableError';
  }
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** vendor / architecture / description, as the adapter reports them */
  adapterName: string;
  isFallback: boolean;
  features: string[];
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** the largest single buffer the caller will need, in bytes; checked against the adapter's limits */
  maxBufferBytes?: number;
  /** called once if the device is lost later, with a sentence saying why */
  onLost?: (message: string) => void;
}

const MiB = 1 << 20;
const mib = (n: number) => `${(n / MiB).toFixed(n < MiB ? 2 : 0)} MiB`;

export async function acquireDevice(gpu: GPU | undefined, opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  if (!gpu) {
    const secure = typeof globalThis.isSecureContext === 'boolean' ? globalThis.isSecureContext : true;
    throw new GpuUnavailableError(
      secure
        ? 'This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome, Edge or Safari ' +
            '(Chrome/Edge 113+ on Windows, macOS and ChromeOS; on Linux start Chrome with --enable-unsafe-webgpu ' +
            'or enable chrome://flags/#enable-unsafe-webgpu), or Firefox 141+ on Windows.'
        : 'WebGPU is only offered to secure pages: open this page over https, or as http://localhost / http://127.0.0.1.',
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new GpuUnavailableError(`WebGPU refused to offer a GPU adapter: ${(e as Error).message}`);
  }
  if (!adapter) {
    throw new GpuUnavailableError(
      'WebGPU is present but offered no GPU adapter: the GPU may be blocklisted or WebGPU disabled ' +
        '(see chrome://gpu), or the GPU driver is missing. Updating the browser and GPU driver usually helps.',
    );
  }
  const lim = adapter.limits;
  const need = opts.maxBufferBytes ?? 0;
  if (need > lim.maxStorageBufferBindingSize || need > lim.maxBufferSize) {
    throw new GpuUnavailableError(
      `This job needs a ${mib(need)} buffer but this GPU allows at most ${mib(Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize))} ` +
        'per buffer: choose a smaller model or batch.',
    );
  }
  // Ask for the adapter's own maxima of the limits our kernels care about (a device gets defaults otherwise).
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
    maxBufferSize: lim.maxBufferSize,
    maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: lim.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: lim.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
  };
  const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    throw new GpuUnavailableError(`The GPU adapter refused to create a device: ${(e as Error).message}`);
  }
  device.lost.then((info) => {
    const why = info.reason === 'destroyed' ? 'it was released by this page' : `the GPU or its driver stopped it (${info.message || 'no detail given'})`;
    opts.onLost?.(`The GPU device was lost: ${why}.`);
  });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const adapterName = info ? [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || 'unknown adapter' : 'unknown adapter';
  const isFallback = Boolean((info as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  return { device, adapter, adapterName, isFallback, features: [...device.features] };
}
