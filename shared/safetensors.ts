// safetensors I/O (https://github.com/huggingface/safetensors format): an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes.
// Reading accepts what PyTorch commonly writes (F32, F64, F16, BF16, I32, I64, U8, BOOL) and converts it to
// our two host types: Float32Array for floats, Int32Array for integers. Writing emits F32 and I32.
import { numel, type HostTensor } from './tensor.ts';

export interface SafetensorsFile {
  tensors: Record<string, HostTensor>;
  /** `__metadata__`: string values, as the format requires */
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) throw new Error(`not a safetensors file: ${bytes.length} bytes is shorter than its 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8) throw new Error(`not a safetensors file: header length ${headerLen} exceeds the file size ${bytes.length}`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new Error(`not a safetensors file: its header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + headerLen;
  const metadata: Record<string, string> = header.__metadata__ ?? {};
  const tensors: Record<string, HostTensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = BYTES[dtype];
    if (!width) throw new Error(`tensor '${name}': dtype ${dtype} is not supported (use F32, or I32/I64 for indices)`);
    const whole = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(whole)) throw new Error(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of sizes >= 0`);
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every(whole)) {
      throw new Error(`tensor '${name}': data_offsets ${JSON.stringify(data_offsets)} is not a pair of byte offsets >= 0`);
    }
    const n = numel(shape);
    const [begin, end] = data_offsets;
    if (end - begin !== n * width || base + end > bytes.length) {
      throw new Error(`tensor '${name}': byte range [${begin}, ${end}) does not hold ${n} × ${dtype} within the file`);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset + base + begin, end - begin);
    let data: Float32Array | Int32Array;
    if (dtype === 'F32') {
      // copy the bytes as they are (little-endian, as every JS host): a float64 round trip would quiet signalling NaNs
      // (an explicit copy: Node's Buffer.slice would return a view into a shared pool)
      const copy = new Uint8Array(end - begin);
      copy.set(bytes.subarray(base + begin, base + end));
      data = new Float32Array(copy.buffer);
    } else if (dtype === 'F64' || dtype === 'F16' || dtype === 'BF16') {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        data[i] =
          dtype === 'F64' ? dv.getFloat64(8 * i, true)
          : dtype === 'F16' ? halfToFloat(dv.getUint16(2 * i, true))
          : new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0];
      }
    } else {
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (dtype === 'I64') {
          const v = dv.getBigInt64(8 * i, true);
          if (v > 2147483647n || v < -2147483648n) throw new Error(`tensor '${name}': I64 value ${v} does not fit in 32 bits`);
          data[i] = Number(v);
        } else if (dtype === 'I32') data[i] = dv.getInt32(4 * i, true);
        else if (dtype === 'I16') data[i] = dv.getInt16(2 * i, true);
        else if (dtype === 'I8') data[i] = dv.getInt8(i);
        else data[i] = dv.getUint8(i);
      }
    }
    tensors[name] = { shape: [...shape], data };
  }
  return { tensors, metadata };
}

export function writeSafetensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const bytes = 4 * t.data.length;
    header[name] = { dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    const f = d instanceof Float64Array ? Float32Array.from(d) : d;
    out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), at);
    at += f.byteLength;
  }
  return out;
}
