// Pipeline cache keyed by kernel and override constants: each (kernel, constants) compiles once.
import type { KernelDef } from './kernel.ts';

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  compiled = 0;
  constructor(private device: GPUDevice) {}

  static key(k: KernelDef, constants: Record<string, number>): string {
    const c = Object.keys(constants).sort().map((n) => `${n}=${constants[n]}`).join(',');
    return `${k.file}:${k.entry}{${c}}`;
  }

  get(k: KernelDef, constants: Record<string, number> = {}) {
    const key = PipelineCache.key(k, constants);
    let p = this.pipelines.get(key);
    if (p) return p;
    let module = this.modules.get(k.file);
    if (!module) {
      module = this.device.createShaderModule({ code: k.source, label: k.file });
      this.modules.set(k.file, module);
    }
    const layout = this.device.createBindGroupLayout({
      label: k.name,
      entries: [
        // params live in one uniform ring per Gpu, addressed by dynamic offset, so bind groups can be cached
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
        ...k.bindings.map((b, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ],
    });
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: k.entry, constants },
    });
    this.compiled++;
    p = { pipeline, layout };
    this.pipelines.set(key, p);
    return p;
  }
}
