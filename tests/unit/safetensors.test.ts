// safetensors I/O: round trips bit-exactly, reads what PyTorch writes (I64, F16, BF16, F64), and rejects broken
// files with a message that says what is wrong.
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

/** a file written the way other writers do: given dtype strings and raw little-endian bytes */
function rawFile(entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const e of entries) {
    out.set(e.bytes, at);
    at += e.bytes.length;
  }
  return out;
}

describe('safetensors', () => {
  it('round-trips floats, ints and metadata bit-exactly', () => {
    const rng = new Rng(freshSeed());
    const f = rng.normals(37 * 53);
    f[3] = -0;
    f[5] = 1e-42; // a subnormal survives too
    const i = rng.ints(29, 1000);
    const bytes = writeSafetensors({ w: { shape: [37, 53], data: f }, idx: { shape: [29], data: i } }, { config: '{"a":1}' });
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual({ config: '{"a":1}' });
    expect(back.tensors.w.shape).toEqual([37, 53]);
    expect(new Uint32Array(back.tensors.w.data.buffer)).toEqual(new Uint32Array(f.buffer));
    expect(back.tensors.idx.data).toEqual(i);
    expect(back.tensors.idx.data).toBeInstanceOf(Int32Array);
  });

  it('aligns the data section to 8 bytes', () => {
    const bytes = writeSafetensors({ x: { shape: [1], data: new Float32Array([1]) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
  });

  it('reads I64 indices, F64, F16 and BF16 as PyTorch writes them', () => {
    const i64 = new BigInt64Array([0n, 5n, -1n]);
    const f64 = new Float64Array([1.5, -2.25]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, -2, 0.333
    const bf16 = new Uint16Array([0x3f80, 0x4049]); // 1, 3.140625
    const file = rawFile([
      { name: 'target', dtype: 'I64', shape: [3], bytes: new Uint8Array(i64.buffer) },
      { name: 'a', dtype: 'F64', shape: [2], bytes: new Uint8Array(f64.buffer) },
      { name: 'h', dtype: 'F16', shape: [3], bytes: new Uint8Array(f16.buffer) },
      { name: 'b', dtype: 'BF16', shape: [2], bytes: new Uint8Array(bf16.buffer) },
    ]);
    const t = readSafetensors(file).tensors;
    expect([...t.target.data]).toEqual([0, 5, -1]);
    expect([...t.a.data]).toEqual([1.5, -2.25]);
    expect(t.h.data[0]).toBe(1);
    expect(t.h.data[1]).toBe(-2);
    expect(t.h.data[2]).toBeCloseTo(0.33325, 4);
    expect([...t.b.data]).toEqual([1, 3.140625]);
  });

  it('rejects broken files with clear messages', () => {
    expect(() => readSafetensors(new Uint8Array(3))).toThrow(/shorter than its 8-byte header/);
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setBigUint64(0, 100n, true);
    expect(() => readSafetensors(bad)).toThrow(/exceeds the file size/);
    const short = rawFile([{ name: 'x', dtype: 'F32', shape: [4], bytes: new Uint8Array(8) }]);
    expect(() => readSafetensors(short)).toThrow(/tensor 'x'.*does not hold 4 × F32/);
    const big = rawFile([{ name: 't', dtype: 'I64', shape: [1], bytes: new Uint8Array(new BigInt64Array([1n << 40n]).buffer) }]);
    expect(() => readSafetensors(big)).toThrow(/does not fit in 32 bits/);
    const c64 = rawFile([{ name: 'z', dtype: 'C64', shape: [1], bytes: new Uint8Array(8) }]);
    expect(() => readSafetensors(c64)).toThrow(/dtype C64 is not supported/);
  });

  it('rejects negative or fractional sizes', () => {
    const neg = rawFile([{ name: 'x', dtype: 'F32', shape: [-1, -3], bytes: new Uint8Array(12) }]);
    expect(() => readSafetensors(neg)).toThrow(/tensor 'x': shape \[-1,-3\] is not a list of sizes >= 0/);
    const frac = rawFile([{ name: 'x', dtype: 'F32', shape: [1.5, 2], bytes: new Uint8Array(12) }]);
    expect(() => readSafetensors(frac)).toThrow(/shape \[1.5,2\]/);
  });
});

describe('safetensors F32 payloads', () => {
  it('keep every bit, signalling NaNs included, also when read from a Node Buffer', () => {
    const bits = new Uint32Array([0x7f800001, 0xffc00123, 0x80000000, 0x00000001, 0x3f800000]);
    const bytes = writeSafetensors({ x: { shape: [5], data: new Float32Array(bits.buffer) } });
    for (const input of [bytes, Buffer.from(bytes)]) {
      const back = readSafetensors(input).tensors.x.data as Float32Array;
      expect([...new Uint32Array(back.buffer, back.byteOffset, 5)]).toEqual([...bits]);
    }
  });
});
