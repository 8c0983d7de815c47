// The GPU context every op encodes into: a device, a buffer pool, a pipeline cache and the kernel registry.
// Dispatches are recorded and submitted together (one compute pass per flush) with their params packed into
// one uniform buffer, so a model step costs a handful of submits, not one per kernel.
import type { HostTensor } from '../../shared/tensor.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { AcquiredDevice } from './device.ts';
import type { KernelDef } from './kernel.ts';
import { PipelineCache } from './pipelines.ts';
import { BufferPool } from './pool.ts';

export type DType = 'f32' | 'i32';

export interface GpuTensor {
  buffer: GPUBuffer;
  shape: number[];
  dtype: DType;
}

export interface Dispatch {
  kernel: string;
  constants?: Record<string, number>;
  /** params struct: u32 fields first, then f32 fields (WGSL layout: all 4-byte scalars, packed) */
  u32?: number[];
  f32?: number[];
  buffers: (GpuTensor | GPUBuffer)[];
  /** workgroup counts; use Gpu.grid for 1-D work larger than 65535 workgroups */
  workgroups: [number, number?, number?];
}

interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  params: ArrayBuffer;
  buffers: GPUBuffer[];
  workgroups: [number, number, number];
}

/** a buffer cleared to zero: clearBuffer is a memset, far cheaper than a fill shader on CPU adapters */
interface RecordedClear {
  clear: GPUBuffer;
  bytes: number;
}

/** a buffer-to-buffer copy (offsets and size in bytes, multiples of 4) */
interface RecordedCopy {
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  bytes: number;
}

type Recorded = RecordedDispatch | RecordedClear | RecordedCopy;

const UNIFORM_STRIDE = 256; // minUniformBufferOffsetAlignment on every adapter we know
const NAN_BITS = 0x7fc00000;
// GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST, spelled out: in Node the GPU globals exist only once Dawn is loaded
const STORAGE = 0x80 | 0x04 | 0x08;

export class GpuLostError extends Error {}

export class Gpu {
  readonly device: GPUDevice;
  readonly adapterName: string;
  readonly isFallback: boolean;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly kernels = new Map<string, KernelDef>();
  /** fill every new tensor with NaN first, so an element a kernel forgets to write shows up in tests */
  poison = false;
  /** set once the device is lost; every later call throws it */
  lost: string | null = null;
  private pending: Recorded[] = [];
  private uniform: GPUBuffer | null = null;
  private bindGroups = new Map<string, GPUBindGroup>();
  private ids = new WeakMap<object, number>();
  private nextId = 1;
  private errors: string[] = [];
  /** keeps the adapter (and, in Node, Dawn's GPU object) alive while the device lives: see ENVIRONMENT.md */
  private readonly keepAlive: unknown[];
  dispatches = 0;
  submits = 0;

  constructor(acq: AcquiredDevice, kernels: KernelDef[], keepAlive: unknown[] = []) {
    this.device = acq.device;
    this.adapterName = acq.adapterName;
    this.isFallback = acq.isFallback;
    this.keepAlive = [acq.adapter, ...keepAlive];
    this.pool = new BufferPool(this.device, STORAGE, Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize));
    this.pipelines = new PipelineCache(this.device);
    for (const k of kernels) {
      if (this.kernels.has(k.name)) throw new Error(`kernel '${k.name}' is registered twice`);
      this.kernels.set(k.name, k);
    }
    this.device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      if (this.errors.length < 20) this.errors.push(msg);
    });
    this.device.lost.then((info) => {
      this.lost = `The GPU device was lost (${info.reason}): ${info.message || 'no detail given'}`;
    });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  private check(): void {
    if (this.lost) throw new GpuLostError(this.lost);
    if (this.errors.length) {
      const e = this.errors.splice(0);
      throw new Error(`WebGPU reported ${e.length} error(s):\n${e.join('\n')}`);
    }
  }

  tensor(shape: number[], dtype: DType = 'f32', label?: string): GpuTensor {
    const n = numel(shape);
    const bytes = Math.max(4, 4 * n);
    const max = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (bytes > max) {
      throw new Error(
        `a ${dtype} tensor of shape ${shapeStr(shape)} needs ${(bytes / 2 ** 20).toFixed(1)} MiB, more than this GPU's ` +
          `${(max / 2 ** 20).toFixed(0)} MiB per buffer`,
      );
    }
    const t: GpuTensor = { buffer: this.pool.acquire(bytes, label), shape: [...shape], dtype };
    if (this.poison) this.fill(t, NAN_BITS, true);
    return t;
  }

  upload(h: HostTensor, label?: string): GpuTensor {
    const dtype: DType = h.data instanceof Int32Array ? 'i32' : 'f32';
    const t = this.tensor(h.shape, dtype, label);
    this.flush(); // queue writes land before recorded work: submit what is recorded first to keep order
    const data = h.data instanceof Float64Array ? Float32Array.from(h.data) : h.data;
    if (data.length) this.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return t;
  }

  /** fill with a float value (or raw 32-bit pattern when `bits` is set); zero is a clear, other values a dispatch */
  fill(t: GpuTensor, value: number, bits = false): void {
    const n = numel(t.shape);
    const pattern = bits ? value >>> 0 : new Uint32Array(new Float32Array([value]).buffer)[0];
    if (pattern === 0) {
      // On SwiftShader a fill shader cleared 25 MB in ~60 ms, clearBuffer in ~2 ms; GPUs clear at bandwidth.
      if (n) this.pending.push({ clear: t.buffer, bytes: 4 * n });
      return;
    }
    this.run({ kernel: 'fill', u32: [n, pattern], buffers: [t], workgroups: this.grid(Math.ceil(n / 256)) });
  }

  /** record a copy of `bytes` from src at srcOffset to dst at dstOffset (bytes, multiples of 4), in order with dispatches */
  copy(src: GpuTensor | GPUBuffer, srcOffset: number, dst: GpuTensor | GPUBuffer, dstOffset: number, bytes: number): void {
    if ((srcOffset | dstOffset | bytes) % 4) throw new Error(`copy: offsets and size must be multiples of 4 bytes (got ${srcOffset}, ${dstOffset}, ${bytes})`);
    if (bytes) this.pending.push({ src: 'buffer' in src ? src.buffer : src, srcOffset, dst: 'buffer' in dst ? dst.buffer : dst, dstOffset, bytes });
  }

  zeros(shape: number[], dtype: DType = 'f32'): GpuTensor {
    const t = this.tensor(shape, dtype);
    this.fill(t, 0);
    return t;
  }

  /** workgroup counts for `n` workgroups of 1-D work, wrapped into y past the 65535 per-dimension limit */
  grid(n: number): [number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (n <= max) return [Math.max(1, n), 1];
    const y = Math.ceil(n / max);
    return [Math.ceil(n / y), y];
  }

  run(d: Dispatch): void {
    const k = this.kernels.get(d.kernel);
    if (!k) throw new Error(`no kernel named '${d.kernel}' in the registry`);
    if (d.buffers.length !== k.bindings.length) {
      throw new Error(`kernel '${d.kernel}' takes ${k.bindings.length} buffers, got ${d.buffers.length}`);
    }
    const [x, y = 1, z = 1] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`kernel '${d.kernel}': workgroups (${x}, ${y}, ${z}) exceed ${max} per dimension`);
    const { pipeline, layout } = this.pipelines.get(k, d.constants);
    const u = d.u32 ?? [];
    const f = d.f32 ?? [];
    if (u.length + f.length > UNIFORM_STRIDE / 4) throw new Error(`kernel '${d.kernel}': params exceed ${UNIFORM_STRIDE} bytes`);
    const params = new ArrayBuffer(Math.max(16, 4 * Math.ceil((u.length + f.length) / 4) * 4));
    new Uint32Array(params, 0, u.length).set(u);
    new Float32Array(params, 4 * u.length, f.length).set(f);
    const buffers = d.buffers.map((b) => ('buffer' in b ? b.buffer : b));
    this.pending.push({ pipeline, layout, params, buffers, workgroups: [x, y, z] });
    this.dispatches++;
  }

  /** submit everything recorded so far */
  flush(): void {
    if (!this.pending.length) return;
    this.check();
    const work = this.pending.splice(0);
    // Params of this flush go to the front of the uniform ring. Reusing it every flush is safe: a queue write
    // lands after the work submitted before it and before the work submitted after it.
    const need = work.length * UNIFORM_STRIDE;
    if (!this.uniform || this.uniform.size < need) {
      this.uniform?.destroy();
      this.uniform = this.device.createBuffer({ size: Math.max(need, 64 * 1024), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'params ring' });
      this.bindGroups.clear();
    }
    const staging = new Uint8Array(need);
    work.forEach((w, i) => 'params' in w && staging.set(new Uint8Array(w.params), i * UNIFORM_STRIDE));
    this.device.queue.writeBuffer(this.uniform, 0, staging);
    const enc = this.device.createCommandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    for (let i = 0; i < work.length; i++) {
      const w = work[i];
      if ('clear' in w) {
        // clears sit between compute passes, in recorded order
        pass?.end();
        pass = null;
        enc.clearBuffer(w.clear, 0, w.bytes);
        continue;
      }
      if ('src' in w) {
        pass?.end();
        pass = null;
        enc.copyBufferToBuffer(w.src, w.srcOffset, w.dst, w.dstOffset, w.bytes);
        continue;
      }
      pass ??= enc.beginComputePass();
      pass.setPipeline(w.pipeline);
      pass.setBindGroup(0, this.bindGroup(w.layout, w.buffers), [i * UNIFORM_STRIDE]);
      pass.dispatchWorkgroups(...w.workgroups);
    }
    pass?.end();
    this.device.queue.submit([enc.finish()]);
    this.submits++;
  }

  /** bind groups depend only on the layout and the storage buffers (params come by dynamic offset): cache them */
  private bindGroup(layout: GPUBindGroupLayout, buffers: GPUBuffer[]): GPUBindGroup {
    let key = `${this.idOf(layout)}`;
    for (const b of buffers) key += `,${this.idOf(b)}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size > 8192) this.bindGroups.clear(); // bound the cache; misses only cost a rebuild
      bg = this.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: this.uniform!, offset: 0, size: UNIFORM_STRIDE } },
          ...buffers.map((buffer, j) => ({ binding: j + 1, resource: { buffer } })),
        ],
      });
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  private idOf(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.nextId++));
    return id;
  }

  async read(t: GpuTensor): Promise<Float32Array | Int32Array> {
    this.flush();
    const n = numel(t.shape);
    const bytes = Math.max(4, 4 * n);
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(t.buffer, 0, staging, 0, staging.size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      this.check();
      throw e;
    }
    const copy = staging.getMappedRange().slice(0, 4 * n);
    staging.unmap();
    staging.destroy();
    this.check();
    return t.dtype === 'i32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  async readHost(t: GpuTensor): Promise<HostTensor> {
    return { shape: [...t.shape], data: await this.read(t) };
  }

  /** wait for all submitted work (benchmarks) */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  release(...ts: (GpuTensor | undefined)[]): void {
    for (const t of ts) if (t) this.pool.release(t.buffer);
  }

  destroy(): void {
    this.bindGroups.clear();
    this.uniform?.destroy();
    this.pool.destroy();
    this.device.destroy();
    this.keepAlive.length = 0;
  }
}
