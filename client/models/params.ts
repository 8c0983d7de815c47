// A model's parameters and gradients on the GPU, in the flat layout of shared/models/layout.ts: one GPU
// buffer per parameter tensor (kernels bind whole buffers), a matching gradient buffer per tensor, and one
// flat buffer the per-tensor gradients are gathered into (recorded copies) so a step reads back once.
// The flat buffer has one extra element after the gradients: the loss, so loss and grads come back together.
import type { ModelConfig } from '../../shared/models/config.ts';
import { paramLayout, type ParamLayout } from '../../shared/models/layout.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';

export class GpuParams {
  readonly layout: ParamLayout;
  private readonly w = new Map<string, GpuTensor>();
  private readonly dw = new Map<string, GpuTensor>();
  /** (size + 1): every gradient in layout order, then the loss */
  private readonly flat: GpuTensor;

  constructor(
    private readonly g: Gpu,
    config: ModelConfig,
  ) {
    this.layout = paramLayout(config);
    for (const p of this.layout.params) {
      this.w.set(p.name, g.tensor(p.shape, 'f32', p.name));
      this.dw.set(p.name, g.tensor(p.shape, 'f32', `grad ${p.name}`));
    }
    this.flat = g.tensor([this.layout.size + 1], 'f32', 'flat grads + loss');
  }

  /** the parameter tensor (PyTorch name and shape; gpt's lm_head.weight is wte's) */
  weight(name: string): GpuTensor {
    return this.w.get(this.layout.spec(name).name)!;
  }

  /** the gradient tensor, shaped as the parameter */
  grad(name: string): GpuTensor {
    return this.dw.get(this.layout.spec(name).name)!;
  }

  /** upload every parameter from a flat host array in the layout (queue writes, ordered after recorded work) */
  set(flat: Float32Array): void {
    if (flat.length !== this.layout.size) throw new Error(`${this.layout.config.model} model has ${this.layout.size} parameters but the array has ${flat.length}`);
    this.g.flush(); // queue writes land at once: submit what is recorded before them first
    for (const p of this.layout.params) {
      const v = this.layout.view(flat, p.name);
      this.g.device.queue.writeBuffer(this.w.get(p.name)!.buffer, 0, v.buffer, v.byteOffset, v.byteLength);
    }
  }

  /**
   * Record the gather of every gradient (and the 0-dim `loss`) into the flat buffer, submit, and read it back
   * once: { loss, grads } with grads a fresh Float32Array in the layout.
   */
  async read(loss: GpuTensor): Promise<{ loss: number; grads: Float32Array }> {
    for (const p of this.layout.params) this.g.copy(this.dw.get(p.name)!, 0, this.flat, 4 * p.offset, 4 * p.numel);
    this.g.copy(loss, 0, this.flat, 4 * this.layout.size, 4);
    const all = (await this.g.read(this.flat)) as Float32Array;
    return { loss: all[this.layout.size], grads: all.slice(0, this.layout.size) };
  }

  /**
   * Overwrite every gradient buffer from a flat host array in the layout (e.g. micro-batch gradients summed on
   * the host), so GpuAdamW.step reads them (queue writes, ordered after recorded work).
   */
  setGrads(flat: Float32Array): void {
    if (flat.length !== this.layout.size) throw new Error(`${this.layout.config.model} model has ${this.layout.size} parameters but the gradient array has ${flat.length}`);
    this.g.flush();
    for (const p of this.layout.params) {
      const v = this.layout.view(flat, p.name);
      this.g.device.queue.writeBuffer(this.dw.get(p.name)!.buffer, 0, v.buffer, v.byteOffset, v.byteLength);
    }
  }

  /** every parameter read back, as a fresh Float32Array in the layout (gathered into the flat buffer, one readback) */
  async get(): Promise<Float32Array> {
    for (const p of this.layout.params) this.g.copy(this.w.get(p.name)!, 0, this.flat, 4 * p.offset, 4 * p.numel);
    const all = (await this.g.read(this.flat)) as Float32Array;
    return all.slice(0, this.layout.size);
  }

  /** GPU bytes held, as allocated (the pool's size classes): the weights, and the grads with the flat readback buffer */
  get bytes(): { weights: number; grads: number } {
    let weights = 0;
    let grads = this.flat.buffer.size;
    for (const t of this.w.values()) weights += t.buffer.size;
    for (const t of this.dw.values()) grads += t.buffer.size;
    return { weights, grads };
  }

  /** hand every buffer back to the pool */
  release(): void {
    this.g.release(...this.w.values(), ...this.dw.values(), this.flat);
    this.w.clear();
    this.dw.clear();
  }
}
