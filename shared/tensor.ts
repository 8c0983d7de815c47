// Host-side tensors: a shape and a flat, row-major typed array. Float data is Float32Array on the wire and
// on the GPU, Float64Array inside the CPU references; integer data (indices, targets) is Int32Array.
export type FloatArray = Float32Array | Float64Array;
export type HostData = FloatArray | Int32Array;

export interface HostTensor {
  shape: number[];
  data: HostData;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function tensor(shape: number[], data: HostData): HostTensor {
  if (numel(shape) !== data.length) {
    throw new Error(`tensor of shape [${shape}] needs ${numel(shape)} elements, got ${data.length}`);
  }
  return { shape, data };
}

export const isInt = (t: HostTensor): boolean => t.data instanceof Int32Array;

export const toF64 = (t: HostTensor): Float64Array => Float64Array.from(t.data);

export const shapeStr = (shape: readonly number[]): string => `(${shape.join(', ')})`;
