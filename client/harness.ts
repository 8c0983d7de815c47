// The browser entry used by the op runner, the kernel check and the GPU tests: opens the GPU and exposes
// the runner on window.gradswarm. Tensors cross the page boundary as base64 safetensors.
import { readSafetensors, writeSafetensors } from '../shared/safetensors.ts';
import { SPECS } from '../shared/reference/index.ts';
import { checkOp, runOp } from './runner.ts';
import { openGpu } from './runtime/index.ts';
import type { Gpu } from './runtime/gpu.ts';

const b64encode = (u: Uint8Array) => {
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
};
const b64decode = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

let gpu: Gpu | null = null;
async function ensure(): Promise<Gpu> {
  gpu ??= await openGpu(navigator.gpu);
  return gpu;
}

const api = {
  async info() {
    const g = await ensure();
    return { adapter: g.adapterName, fallback: g.isFallback, features: [...g.device.features], maxBuffer: g.limits.maxStorageBufferBindingSize };
  },
  cases: () => SPECS.map((s) => ({ op: s.name, cases: s.cases.map((c) => ({ name: c.name, large: !!c.large })) })),
  async checkOp(op: string, caseName: string, seed: number) {
    return checkOp(await ensure(), op, caseName, seed);
  },
  /** run op `name` on a base64 safetensors file, options from its metadata; returns base64 safetensors */
  async runOpFile(name: string, fileB64: string, grad: boolean, options: Record<string, unknown>) {
    const file = readSafetensors(b64decode(fileB64));
    const out = await runOp(await ensure(), name, file.tensors, options, grad);
    return b64encode(writeSafetensors(out, { op: name, adapter: (await ensure()).adapterName }));
  },
};

(window as unknown as { gradswarm: typeof api }).gradswarm = api;
