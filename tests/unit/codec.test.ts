// shared/codec.ts: frames of a msgpack skeleton with the typed arrays' raw bytes after it, 8-aligned. Round trips of
// nested payloads, subarray views, zero-copy decoding when the frame is aligned (a copy when not), the socket.io
// parser on top, and a table of malformed frames that must all be refused with MalformedFrameError.
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, decodeFrame, Decoder, encodeFrame, Encoder, headChunks, MalformedFrameError, msgpackFrame, type Packet } from '../../shared/codec.ts';

const f32 = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => (i + 1) * k + 0.25);

/** type and values of a decoded typed array (toEqual alone does not compare the constructor) */
function same(a: unknown, b: ArrayBufferView): void {
  expect(Object.prototype.toString.call(a)).toBe(Object.prototype.toString.call(b));
  const bytes = (v: ArrayBufferView) => Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  expect(bytes(a as ArrayBufferView)).toEqual(bytes(b));
}

/** the frame's bytes at byteOffset `at` of a larger buffer */
function shifted(frame: Uint8Array, at: number): Uint8Array {
  const big = new Uint8Array(frame.byteLength + at + 8);
  big.set(frame, at);
  return big.subarray(at, at + frame.byteLength);
}

/** offset of the i-th placeholder (msgpack bin8 of 9 bytes: c4 09 kind index:u32 byteLength:u32) in the skeleton */
function placeholder(frame: Uint8Array, i = 0): number {
  const end = 4 + new DataView(frame.buffer, frame.byteOffset).getUint32(0, true);
  for (let k = 4, seen = 0; k < end - 1; k++) if (frame[k] === 0xc4 && frame[k + 1] === 9 && seen++ === i) return k + 2;
  throw new Error(`no placeholder ${i}`);
}

const edit = (frame: Uint8Array, f: (b: Uint8Array, d: DataView) => void): Uint8Array => {
  const b = Uint8Array.from(frame);
  f(b, new DataView(b.buffer));
  return b;
};

describe('codec round trips', () => {
  it('nested payloads with typed arrays of every kind at odd lengths', () => {
    const value = {
      name: 'submit',
      grads: f32(7),
      nested: [1, 'two', null, true, { ints: Int32Array.from([-3, 0, 2 ** 31 - 1]), bytes: Uint8Array.from([1, 2, 3, 4, 5]) }],
      u16: Uint16Array.from([65535, 0, 7]),
      more: { deep: [[Float64Array.from([Math.PI])], Int8Array.from([-128, 127, 0]), new Float32Array(0)] },
      big: BigInt64Array.from([-(2n ** 63n), 5n]),
      u32: Uint32Array.from([4294967295]),
      clamped: Uint8ClampedArray.from([255, 0, 9]),
      dv: new DataView(Uint8Array.from([9, 8, 7]).buffer),
      ab: Uint8Array.from([4, 5, 6]).buffer,
      losses: [2.5, 2.6],
    };
    const out = decodeFrame(encodeFrame(value)) as typeof value;
    same(out.grads, value.grads);
    same((out.nested[4] as { ints: Int32Array }).ints, Int32Array.from([-3, 0, 2 ** 31 - 1]));
    same((out.nested[4] as { bytes: Uint8Array }).bytes, Uint8Array.from([1, 2, 3, 4, 5]));
    expect(out.nested.slice(0, 4)).toEqual([1, 'two', null, true]);
    same(out.u16, value.u16);
    same((out.more.deep[0] as unknown[])[0], Float64Array.from([Math.PI]));
    same(out.more.deep[1], value.more.deep[1] as Int8Array);
    same(out.more.deep[2], new Float32Array(0));
    same(out.big, value.big);
    same(out.u32, value.u32);
    same(out.clamped, value.clamped);
    expect(out.dv).toBeInstanceOf(DataView);
    expect([out.dv.getUint8(0), out.dv.getUint8(2), out.dv.byteLength]).toEqual([9, 7, 3]);
    expect(out.ab).toBeInstanceOf(ArrayBuffer);
    expect(Array.from(new Uint8Array(out.ab))).toEqual([4, 5, 6]);
    expect(out.losses).toEqual([2.5, 2.6]);
    expect(out.name).toBe('submit');
  });

  it('values without arrays, a bare typed array, and the input left as it was', () => {
    for (const v of [null, 0, 'x', [1, [2, [3]]], { a: { b: 'c' } }, []]) expect(decodeFrame(encodeFrame(v))).toEqual(v);
    same(decodeFrame(encodeFrame(f32(3))), f32(3));
    const input = { g: f32(5), list: [f32(2)] };
    decodeFrame(encodeFrame(input));
    expect(input.g).toBeInstanceOf(Float32Array);
    expect(input.list[0]).toBeInstanceOf(Float32Array);
  });

  it('views (subarray, Buffer) send only their own elements', () => {
    const base = f32(20);
    const sub = base.subarray(3, 10); // byteOffset 12
    const odd = Uint8Array.from({ length: 30 }, (_, i) => i).subarray(5, 16);
    const i16 = Int16Array.from({ length: 9 }, (_, i) => -i).subarray(1, 8);
    const out = decodeFrame(encodeFrame([sub, odd, i16, Buffer.from([7, 7, 1])])) as [Float32Array, Uint8Array, Int16Array, Uint8Array];
    same(out[0], Float32Array.from(sub));
    expect(out[0].length).toBe(7);
    same(out[1], Uint8Array.from(odd));
    same(out[2], Int16Array.from(i16));
    same(out[3], Uint8Array.from([7, 7, 1])); // a Buffer arrives as a Uint8Array
  });

  it('blobs start 8-aligned in the frame', () => {
    const frame = encodeFrame({ a: Uint8Array.from([1]), b: f32(3), c: Float64Array.from([1, 2]) });
    const out = decodeFrame(frame) as { a: Uint8Array; b: Float32Array; c: Float64Array };
    for (const v of [out.a, out.b, out.c]) {
      expect(v.buffer).toBe(frame.buffer);
      expect(v.byteOffset % 8).toBe(0);
    }
  });
});

describe('zero copy', () => {
  it("an aligned frame's typed arrays are views into it", () => {
    const g = f32(1001);
    for (const at of [0, 8, 64]) {
      const frame = shifted(encodeFrame(['submit', { grads: g, i: Int32Array.from([1, 2, 3]) }]), at);
      const [, p] = decodeFrame(frame) as [string, { grads: Float32Array; i: Int32Array }];
      expect(p.grads.buffer).toBe(frame.buffer);
      expect(p.i.buffer).toBe(frame.buffer);
      same(p.grads, g);
    }
  });

  it('a misaligned frame is decoded from copies, with the same values', () => {
    const g = f32(33);
    for (const at of [1, 2, 3, 4, 6]) {
      const frame = shifted(encodeFrame({ grads: g, d: Float64Array.from([1.5]), u: Uint16Array.from([1, 2]), b: Uint8Array.from([3]) }), at);
      const p = decodeFrame(frame) as { grads: Float32Array; d: Float64Array; u: Uint16Array; b: Uint8Array };
      same(p.grads, g);
      same(p.d, Float64Array.from([1.5]));
      same(p.u, Uint16Array.from([1, 2]));
      expect(p.grads.buffer === frame.buffer).toBe(at % 4 === 0);
      expect(p.d.buffer).not.toBe(frame.buffer); // at most 4-aligned here
      expect(p.b.buffer).toBe(frame.buffer); // one byte per element: always a view
    }
  });
});

describe('socket.io parser', () => {
  it('packets round trip through Encoder and Decoder (ArrayBuffer chunks, as browsers get them)', () => {
    const packets: Packet[] = [
      { type: 2, nsp: '/', data: ['submit', { runId: 'r', grads: f32(9) }], id: 4 },
      { type: 3, nsp: '/', data: [{ ok: true, params: f32(3) }], id: 4 },
      { type: 0, nsp: '/admin', data: { token: 't' } },
      { type: 1, nsp: '/' },
    ];
    for (const p of packets) {
      const got: Packet[] = [];
      const d = new Decoder();
      d.on('decoded', (q) => got.push(q));
      const [frame, ...rest] = new Encoder().encode(p);
      expect(rest).toEqual([]);
      d.add(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength));
      expect(got).toEqual([p]);
    }
  });
});

describe('malformed frames', () => {
  const good = encodeFrame([2, '/', ['submit', { grads: f32(5), i: Int32Array.from([1, 2]) }], 3]);
  const noBlobs = encodeFrame([2, '/', ['hello', { kind: 'sim' }], 1]);
  const deep = (n: number) => msgpackFrame(Uint8Array.from([...new Array(n).fill(0x91), 0xc0]));
  const table: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /less than the 4-byte header/],
    ['a truncated header', Uint8Array.from([5, 0, 0]), /less than the 4-byte header/],
    ['a zero-length skeleton', Uint8Array.from([0, 0, 0, 0]), /a 0-byte skeleton/],
    ['a skeleton length past the end', edit(noBlobs, (_, d) => d.setUint32(0, noBlobs.length, true)), /skeleton in a/],
    ['a skeleton length of 4 GiB', edit(noBlobs, (_, d) => d.setUint32(0, 0xffffffff, true)), /4294967295-byte skeleton/],
    ['a skeleton of two values (msgpack left over)', msgpackFrame(Uint8Array.from([0x01, 0x02])), /not msgpack/],
    ['a skeleton cut short', msgpackFrame(Uint8Array.from([0x94, 0x02, 0xa1])), /not msgpack/],
    ['bytes after the skeleton', Uint8Array.from([...noBlobs, 0]), /after the skeleton/],
    ['a frame cut in the last blob', good.subarray(0, good.length - 1), /blob 1 .* past the frame's end/],
    ['a frame cut in half', good.subarray(0, good.length >> 1), /skeleton in a/],
    ['a frame cut right after the skeleton', good.subarray(0, 4 + new DataView(good.buffer).getUint32(0, true)), /blob 0 .* past the frame's end/],
    ['bytes after the last blob', Uint8Array.from([...good, 0, 0, 0, 0]), /after the last array/],
    ['a placeholder index out of range', edit(good, (_, d) => d.setUint32(placeholder(good, 1) + 1, 2, true)), /index 2 out of range/],
    ['a placeholder index of 2³² − 1', edit(good, (_, d) => d.setUint32(placeholder(good) + 1, 0xffffffff, true)), /index 4294967295 out of range/],
    ['a placeholder index used twice', edit(good, (_, d) => d.setUint32(placeholder(good, 1) + 1, 0, true)), /used twice/],
    ['a blob length of 4 GiB', edit(good, (_, d) => d.setUint32(placeholder(good) + 5, 0xfffffffc, true)), /4294967292 bytes .* past the frame's end/],
    ['a blob length past the end', edit(good, (_, d) => d.setUint32(placeholder(good, 1) + 5, 16, true)), /blob 1 .* past the frame's end/],
    ['a blob length that is no whole number of elements', edit(good, (_, d) => d.setUint32(placeholder(good) + 5, 18, true)), /whole number/],
    ['a placeholder of unknown kind', edit(good, (b) => (b[placeholder(good)] = 200)), /unknown kind 200/],
    // the 20 bytes of grads leave 4 bytes of padding before the next blob
    ['non-zero padding', edit(good, (b) => (b[((4 + new DataView(good.buffer).getUint32(0, true) + 7) & ~7) + 20] = 1)), /non-zero padding/],
    ['a binary of another size in the skeleton', msgpackFrame(Uint8Array.from([0x92, 0xc4, 0x02, 1, 2, 0xc0])), /2-byte binary/],
    ['a typed array (msgpackr extension) in the skeleton', msgpackFrame(Uint8Array.from([0x91, 0xc7, 0x05, 0x74, 0x07, 0, 0, 0x80, 0x3f])), /typed array inside the skeleton/],
    ['msgpackr references (structured clone)', msgpackFrame(Uint8Array.from([0xd6, 0x69, 0, 0, 0, 1, 0x90])), /not msgpack/],
    ['an array claiming 2³² − 1 elements', msgpackFrame(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0])), /not msgpack/],
    ['a map claiming 2³² − 1 entries', msgpackFrame(Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0])), /not msgpack/],
    ['a binary claiming 4 GiB', msgpackFrame(Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2])), /not msgpack/],
    ['a string claiming 4 GiB', msgpackFrame(Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])), /not msgpack/],
    ['arrays nested 10⁵ deep', deep(100_000), /not msgpack/],
  ];

  it.each(table)('refuses %s', (_, frame, why) => {
    expect(() => decodeFrame(frame)).toThrow(MalformedFrameError);
    expect(() => decodeFrame(frame)).toThrow(why);
  });

  it('still decodes the frames the table was made from, and moderate nesting', () => {
    expect(decodeFrame(good)).toBeTruthy();
    expect(decodeFrame(noBlobs)).toBeTruthy();
    expect(decodeFrame(deep(1000))).toBeTruthy();
  });

  it('the decoder refuses frames that decode but are no packet, and text', () => {
    const d = new Decoder();
    for (const v of [{ not: 'a packet' }, [9, '/', null, null], [2, '/', [42], null], [2, 'no-slash', ['x'], null], [3, '/', 'x', 1], [2, '/', ['x'], -1]]) {
      expect(() => d.add(encodeFrame(v))).toThrow(MalformedFrameError);
    }
    expect(() => d.add('2["hello",{}]')).toThrow(MalformedFrameError);
    expect(() => d.add(42)).toThrow(MalformedFrameError);
  });
});

describe('skeleton cap', () => {
  it('a frame whose msgpack skeleton is over MAX_SKELETON is refused before unpacking', async () => {
    const { MAX_SKELETON } = await import('../../shared/codec.ts');
    const big = Array.from({ length: MAX_SKELETON / 4 }, (_, i) => i); // ~1.25 MiB of small msgpack integers
    const [frame] = new Encoder().encode({ type: 2, nsp: '/', data: ['submit', { losses: big }] });
    const d = new Decoder();
    expect(() => d.add(frame)).toThrow(MalformedFrameError);
    expect(() => d.add(frame)).toThrow(/skeleton \(at most 1048576/);
    const [small] = new Encoder().encode({ type: 2, nsp: '/', data: ['submit', { losses: big.slice(0, 1000) }] });
    let got: unknown;
    d.on('decoded', (p) => (got = p));
    d.add(small);
    expect((got as { data: [string, { losses: number[] }] }).data[1].losses).toHaveLength(1000);
  });
});

describe('large packets: a head, then the arrays in chunks', () => {
  /** the packets a Decoder emits for these messages */
  const decodeAll = (messages: unknown[], d = new Decoder()) => {
    const out: Packet[] = [];
    d.on('decoded', (p) => out.push(p));
    for (const m of messages) d.add(m);
    return out;
  };
  // odd sizes: a gradient of 1.3 chunks, an empty array, a 2-byte array, a Float64Array of exactly 2 chunks
  const grads = Float32Array.from({ length: Math.floor((1.3 * CHUNK_BYTES) / 4) + 3 }, () => Math.random() - 0.5);
  const f64 = Float64Array.from({ length: (2 * CHUNK_BYTES) / 8 }, (_, i) => i / 3);
  const packet: Packet = { type: 2, nsp: '/', data: ['submit', { grads, empty: new Float32Array(0), tiny: new Uint16Array([7, 9]), f64, loss: 2.5 }], id: 12 };

  it('round trips: views of the sender arrays go out, each array arrives in its own buffer of its exact size', () => {
    const messages = new Encoder().encode(packet);
    const chunks = Math.ceil(grads.byteLength / CHUNK_BYTES) + 1 + 2; // grads, tiny, f64 (the empty one has none)
    expect(messages).toHaveLength(1 + chunks);
    expect(headChunks(messages[0])).toBe(chunks);
    expect(messages[1].buffer).toBe(grads.buffer); // a view, not a copy
    for (const m of messages.slice(1)) expect(m.byteLength).toBeLessThanOrEqual(CHUNK_BYTES);
    // browsers hand binary messages over as ArrayBuffers
    const [p] = decodeAll(messages.map((m, i) => (i % 2 ? m.slice().buffer : m)));
    const got = (p.data as [string, Record<string, ArrayBufferView & { length: number }>])[1];
    same(got.grads, grads);
    same(got.f64, f64);
    same(got.tiny, new Uint16Array([7, 9]));
    same(got.empty, new Float32Array(0));
    expect(got.grads.buffer.byteLength).toBe(grads.byteLength);
    expect(got.loss).toBe(2.5);
    expect(p.id).toBe(12);
    // one frame when the arrays are small
    expect(new Encoder().encode({ type: 2, nsp: '/', data: ['x', new Float32Array(CHUNK_BYTES / 4)] })).toHaveLength(1);
    expect(headChunks(encodeFrame({ a: 1 }))).toBeUndefined();
  });

  it('tells its owner the size of each chunk it copied, and nothing of heads or small frames', () => {
    const copied: number[] = [];
    const e = new Encoder();
    const messages = [...e.encode({ type: 2, nsp: '/', data: ['lease', { runId: 'r' }], id: 1 }), ...e.encode(packet)];
    const out = decodeAll(messages, new Decoder({ maxPacketBytes: 1 << 30, copied: (n) => copied.push(n) }));
    expect(out).toHaveLength(2);
    expect(copied).toEqual(messages.slice(2).map((m) => m.byteLength));
  });

  it('a decoder goes on after a large packet: small, large, small', () => {
    const e = new Encoder();
    const small: Packet = { type: 2, nsp: '/', data: ['lease', { runId: 'r' }], id: 1 };
    const out = decodeAll([...e.encode(small), ...e.encode(packet), ...e.encode(small)]);
    expect(out.map((p) => p.id)).toEqual([1, 12, 1]);
  });

  const messages = () => new Encoder().encode(packet);
  const refused: [string, () => unknown[], RegExp, number?][] = [
    ['a chunk cut short', () => messages().map((m, i) => (i === 1 ? m.subarray(0, 100) : m)), /a chunk of 100 bytes where blob 0 needs/],
    ['a chunk too long', () => messages().map((m, i) => (i === 2 ? Uint8Array.from([...m, 1]) : m)), /a chunk of .* bytes where blob 0 needs/],
    ['text between chunks', () => [messages()[0], '2["x"]'], /text frame/],
    ['a head that miscounts its chunks', () => [edit(messages()[0], (_, d) => d.setUint32(4, 3, true))], /announcing 3 chunk\(s\) for arrays that take 5/],
    ['a head whose skeleton length is wrong', () => [edit(messages()[0], (_, d) => d.setUint32(0, 0x80000000 + 5, true))], /announcing a 5-byte skeleton/],
    ['a head over the limit', () => messages(), new RegExp(`announcing ${grads.byteLength + 4 + f64.byteLength} bytes of arrays, over this end's limit of 1000000`), 1_000_000],
    ['a head for small arrays', () => [smallHead()], /up to 1048576 they travel in one frame/],
  ];
  it.each(refused)('refuses %s', (_, make, why, limit) => {
    const d = new Decoder({ maxPacketBytes: limit ?? 1 << 30 });
    expect(() => {
      for (const m of make()) d.add(m);
    }).toThrow(why);
  });
});

/** a head whose arrays are small enough for one frame: made by hand (the encoder never makes one) */
function smallHead(): Uint8Array {
  const frame = encodeFrame([2, '/', ['x', new Float32Array(4)], null]);
  const skeleton = frame.subarray(4, 4 + new DataView(frame.buffer).getUint32(0, true));
  const head = new Uint8Array(8 + skeleton.byteLength);
  new DataView(head.buffer).setUint32(0, 0x80000000 + skeleton.byteLength, true);
  new DataView(head.buffer).setUint32(4, 1, true);
  head.set(skeleton, 8);
  return head;
}
