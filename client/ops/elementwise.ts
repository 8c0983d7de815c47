// GPU side of the elementwise family (shaders/elementwise.wgsl).
import source from '../../shaders/elementwise.wgsl';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

const WG = 256;

/** one dispatch over every element; the vec4 entry point when the size allows it */
function map(g: Gpu, kernel: string, x: GpuTensor, y: GpuTensor): GpuTensor {
  const n = numel(x.shape);
  const out = g.tensor(x.shape);
  const vec4 = n % 4 === 0;
  const units = vec4 ? n / 4 : n;
  g.run({ kernel: vec4 ? `${kernel}_v4` : kernel, u32: [units], buffers: [x, y, out], workgroups: g.grid(Math.ceil(units / WG)) });
  return out;
}

export const gelu = (g: Gpu, x: GpuTensor) => map(g, 'gelu_fwd', x, x);
export const geluBackward = (g: Gpu, x: GpuTensor, dout: GpuTensor) => map(g, 'gelu_bwd', x, dout);
export const tanh = (g: Gpu, x: GpuTensor) => map(g, 'tanh_fwd', x, x);
export const tanhBackward = (g: Gpu, out: GpuTensor, dout: GpuTensor) => map(g, 'tanh_bwd', out, dout);
export const sigmoid = (g: Gpu, x: GpuTensor) => map(g, 'sigmoid_fwd', x, x);
export const sigmoidBackward = (g: Gpu, out: GpuTensor, dout: GpuTensor) => map(g, 'sigmoid_bwd', out, dout);
export function add(g: Gpu, a: GpuTensor, b: GpuTensor): GpuTensor {
  if (shapeStr(a.shape) !== shapeStr(b.shape)) throw new Error(`add: input ${shapeStr(a.shape)} and other ${shapeStr(b.shape)} differ in shape`);
  return map(g, 'add_fwd', a, b);
}

const ops: GpuOp[] = [
  { name: 'gelu', forward: (g, i) => ({ out: gelu(g, i.x) }), backward: (g, i, _o, _out, d) => ({ x: geluBackward(g, i.x, d.out) }) },
  { name: 'tanh', forward: (g, i) => ({ out: tanh(g, i.x) }), backward: (g, _i, _o, out, d) => ({ x: tanhBackward(g, out.out, d.out) }) },
  { name: 'sigmoid', forward: (g, i) => ({ out: sigmoid(g, i.x) }), backward: (g, _i, _o, out, d) => ({ x: sigmoidBackward(g, out.out, d.out) }) },
  // add's backward is the identity: both grads are the upstream grad itself
  { name: 'add', forward: (g, i) => ({ out: add(g, i.input, i.other) }), backward: (_g, _i, _o, _out, d) => ({ input: d.out, other: d.out }) },
];

export const elementwiseFamily: OpFamily = {
  kernels: kernels('elementwise.wgsl', source, {
    gelu_fwd: ['read', 'read', 'rw'],
    gelu_fwd_v4: ['read', 'read', 'rw'],
    gelu_bwd: ['read', 'read', 'rw'],
    gelu_bwd_v4: ['read', 'read', 'rw'],
    tanh_fwd: ['read', 'read', 'rw'],
    tanh_fwd_v4: ['read', 'read', 'rw'],
    tanh_bwd: ['read', 'read', 'rw'],
    tanh_bwd_v4: ['read', 'read', 'rw'],
    sigmoid_fwd: ['read', 'read', 'rw'],
    sigmoid_fwd_v4: ['read', 'read', 'rw'],
    sigmoid_bwd: ['read', 'read', 'rw'],
    sigmoid_bwd_v4: ['read', 'read', 'rw'],
    add_fwd: ['read', 'read', 'rw'],
    add_fwd_v4: ['read', 'read', 'rw'],
  }),
  ops,
};
