// Our kernels on one benchmark row, through the op table's GPU ops (client/ops/*: GPU_OPS), called directly:
// inputs are uploaded once, then each call only records its dispatches; a timed run records `reps` calls and
// waits with g.sync() (all in one submit, as a training step does). Used by the browser page and by the
// Node/Dawn bench alike; the latter also reads the GPU's clock.
import { GPU_OPS } from '../client/ops/index.ts';
import type { GpuTensors } from '../client/ops/op.ts';
import type { Gpu, GpuTensor } from '../client/runtime/gpu.ts';
import { resolveOptions } from '../shared/ops.ts';
import { SPECS } from '../shared/reference/index.ts';
import type { HostTensor } from '../shared/tensor.ts';
import { diffInputs, gradOutput, type BenchRow } from './cases.ts';
import { checkFinite, errorRun, type LibOutcome } from './result.ts';
import { measure, type TimingOptions } from './timing.ts';

export const NOT_IMPLEMENTED = 'not implemented yet';

/**
 * The device's own time for one submit: an empty compute pass writes a timestamp at its end just before the
 * submit, another just after, so the span covers the submitted work only (the calls are recorded beforehand).
 */
class GpuClock {
  private readonly set: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly staging: GPUBuffer;
  constructor(private readonly device: GPUDevice) {
    this.set = device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }
  static for(g: Gpu, t: TimingOptions): GpuClock | null {
    return t.gpuClock && g.device.features.has('timestamp-query') ? new GpuClock(g.device) : null;
  }
  private mark(i: 0 | 1): void {
    const enc = this.device.createCommandEncoder();
    enc.beginComputePass({ timestampWrites: { querySet: this.set, endOfPassWriteIndex: i } }).end();
    if (i === 1) {
      enc.resolveQuerySet(this.set, 0, 2, this.resolved, 0);
      enc.copyBufferToBuffer(this.resolved, 0, this.staging, 0, 16);
    }
    this.device.queue.submit([enc.finish()]);
  }
  /** submit what `g` has recorded between two timestamps; resolves with the milliseconds between them */
  async time(g: Gpu): Promise<number> {
    this.mark(0);
    g.flush();
    this.mark(1);
    await this.staging.mapAsync(GPUMapMode.READ);
    const [a, b] = new BigInt64Array(this.staging.getMappedRange());
    this.staging.unmap();
    return Number(b - a) / 1e6;
  }
  destroy(): void {
    this.set.destroy();
    this.resolved.destroy();
    this.staging.destroy();
  }
}

export async function runOurs(g: Gpu, row: BenchRow, host: Record<string, HostTensor>, seed: number, t: TimingOptions): Promise<LibOutcome> {
  const op = GPU_OPS.get(row.op);
  if (!op || (row.pass === 'backward' && !op.backward)) return { status: 'missing', message: NOT_IMPLEMENTED };
  const spec = SPECS.find((s) => s.name === row.op);
  const opts = spec ? resolveOptions(spec, row.options) : { ...row.options };
  const inputs: GpuTensors = {};
  // tensors that live for the whole row; everything else a call returns is released after it
  const kept = new Map<GPUBuffer, GpuTensor>();
  const keep = (ts: GpuTensors) => Object.values(ts).forEach((x) => kept.has(x.buffer) || kept.set(x.buffer, x));
  const fresh = (ts: GpuTensors) => [...new Map(Object.values(ts).filter((x) => !kept.has(x.buffer)).map((x) => [x.buffer, x])).values()];
  let clock: GpuClock | null = null;
  try {
    for (const name of Object.keys(row.inputs)) inputs[name] = g.upload(host[name], name);
    keep(inputs);
    let call: () => GpuTensors;
    let read: (r: GpuTensors) => Record<string, GpuTensor>;
    if (row.pass === 'forward') {
      call = () => op.forward(g, inputs, opts);
      read = (r) => ({ out: r.out ?? Object.values(r)[0] });
    } else {
      const outs = op.forward(g, inputs, opts);
      keep(outs);
      // the main output gets the row's upstream grad; other differentiable outputs (h_n, c_n) get zeros, as the
      // peers differentiate only the main output
      const gradOuts: GpuTensors = {};
      for (const k of spec?.outputs ?? ['out']) {
        if (outs[k]) gradOuts[k] = k === 'out' ? g.upload(gradOutput(outs[k].shape, seed), `grad_${k}`) : g.zeros(outs[k].shape);
      }
      keep(gradOuts);
      call = () => op.backward!(g, inputs, opts, outs, gradOuts);
      read = (r) => Object.fromEntries(diffInputs(row).filter((k) => r[k]).map((k) => [k, r[k]]));
    }
    // one untimed call, read back: compared with the peers, and checked for NaN
    const first = call();
    const values: Record<string, Float32Array> = {};
    for (const [k, x] of Object.entries(read(first))) values[k] = Float32Array.from(await g.read(x));
    g.release(...fresh(first));
    const bad = checkFinite(values);
    if (bad) return { status: 'error', message: bad };
    clock = GpuClock.for(g, t);
    const timing = await measure(async (reps) => {
      for (let i = 0; i < reps; i++) g.release(...fresh(call()));
      const gpuMs = clock ? await clock.time(g) : undefined;
      await g.sync();
      return gpuMs;
    }, t);
    return { status: 'ok', timing, values };
  } catch (e) {
    return errorRun(e);
  } finally {
    clock?.destroy();
    await g.sync().catch(() => {});
    g.release(...kept.values());
    g.pool.destroy(); // the next row has other sizes: give this row's buffers back to the device
  }
}
