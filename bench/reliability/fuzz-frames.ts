// Fuzz frames for the coordinator, all drawn from one seed (so a failure replays from the seed the suite prints):
//   raw frames written under socket.io (client.io.engine.write): random bytes, text frames, valid packets of every
//   event mutated byte-wise (flips, cuts, insertions), frames whose layout lies (the skeleton length, a placeholder's
//   kind, index or byte length, the padding, trailing bytes; shared/codec.ts), valid frames of the wrong packet shape,
//   and hand-made msgpack in a valid frame header: arrays nested 10⁵ deep, headers claiming 4 GiB arrays, maps,
//   strings and binaries, msgpackr's extensions (typed arrays, RegExp, Set, Error, references, bundles) with random
//   bodies; acks with random ids, namespace connects and disconnects;
//   schema-level frames sent as events through socket.io (so they reach the middleware and the handlers): every
//   protocol event and random names, payloads of the wrong types and sizes, huge arrays and strings, typed arrays of
//   the model's size ± 1 with NaN, extra and missing fields, extra arguments, with and without an ack.
import { msgpackFrame, packValue } from '../../shared/codec.ts';
import { INBOUND, PROTOCOL_VERSION } from '../../shared/protocol.ts';
import { Rng } from '../../shared/rng.ts';

export type Frame =
  | { kind: string; raw: Uint8Array | string }
  | { kind: string; event: string; args: unknown[]; ack: boolean };

export interface FuzzContext {
  runId: string;
  /** the run's parameter count (typed arrays of exactly that size reach the run's checks) */
  params: number;
}

const EVENTS = Object.keys(INBOUND);
const NAMES = [...EVENTS, 'toString', '__proto__', 'constructor', 'hasOwnProperty', 'admin', 'pause', 'stop', '', 'x'.repeat(300), 'é🙂', 'submit ', 'SUBMIT'];
const KEYS = ['runId', 'leaseId', 'version', 'loss', 'losses', 'grads', 'computeMs', 'protocol', 'kind', 'name', 'adapter', 'fallback', 'workerId', '__proto__', 'constructor', 'prototype', ''];

function pick<T>(r: Rng, xs: readonly T[]): T {
  return xs[r.int(xs.length)];
}

function bytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

function text(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCodePoint(r.next() < 0.9 ? 32 + r.int(95) : r.int(0x2ffff));
  return s;
}

/** a length: mostly small, sometimes around the model's size, rarely large */
function length(r: Rng, c: FuzzContext): number {
  const u = r.next();
  if (u < 0.6) return r.int(8);
  if (u < 0.8) return c.params + r.int(3) - 1;
  if (u < 0.95) return r.int(5000);
  return 50_000 + r.int(150_000);
}

function typed(r: Rng, c: FuzzContext): ArrayBufferView {
  const n = length(r, c);
  const k = r.int(5);
  if (k === 0) {
    const a = r.normals(n, 0.1);
    for (let j = 0; j < 3 && n; j++) a[r.int(n)] = pick(r, [NaN, Infinity, -Infinity, 3.4e38, -0]);
    return a;
  }
  if (k === 1) return new Float64Array(n);
  if (k === 2) return new Int32Array(n);
  if (k === 3) return new Uint16Array(n);
  return bytes(r, Math.min(n, 4096));
}

/** o[key] = v as an own property, even for '__proto__' (an assignment would set the prototype instead) */
function own(o: Record<string, unknown>, key: string, v: unknown): void {
  Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
}

/** any value msgpack carries, to depth ~4 */
export function value(r: Rng, c: FuzzContext, depth = 0): unknown {
  switch (r.int(depth > 3 ? 8 : 11)) {
    case 0:
      return r.next() < 0.5 ? null : undefined;
    case 1:
      return r.next() < 0.5;
    case 2:
      return pick(r, [0, -1, 1, 0.5, -0, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e308, -1e308, 5e-324, NaN, Infinity, -Infinity]);
    case 3:
      return r.int(2000) - 1000;
    case 4:
      return text(r, r.next() < 0.95 ? r.int(40) : 1000 + r.int(100_000));
    case 5:
      return typed(r, c);
    case 6:
      return pick(r, [c.runId, `${c.runId}.0.${r.int(40)}`, 'sim', 'browser', 'node', PROTOCOL_VERSION]);
    case 7:
      return r.next() < 0.5 ? BigInt(r.int(2 ** 31)) * 4294967296n : -(2n ** 63n);
    case 8:
      return r.next() < 0.9 ? Array.from({ length: r.int(6) }, () => value(r, c, depth + 1)) : new Array(10_000 + r.int(20_000)).fill(r.int(3));
    case 9: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(6); i > 0; i--) own(o, pick(r, KEYS), value(r, c, depth + 1));
      return o;
    }
    default:
      return payload(r, c, pick(r, EVENTS));
  }
}

/** a payload that satisfies the event's schema, to be mutated */
function payload(r: Rng, c: FuzzContext, event: string): Record<string, unknown> {
  switch (event) {
    case 'hello':
      return { protocol: PROTOCOL_VERSION, kind: pick(r, ['sim', 'browser', 'node']), name: 'fuzz' };
    case 'join':
      return { runId: c.runId };
    case 'lease':
      return { runId: c.runId, version: r.int(3) };
    case 'submit':
      return r.next() < 0.5
        ? { runId: c.runId, leaseId: `${c.runId}.${r.int(3)}.${r.int(60)}`, version: r.int(3), loss: 2 + r.next(), grads: r.normals(c.params, 0.01), computeMs: 5 }
        : { runId: c.runId, leaseId: `${c.runId}.${r.int(3)}.${r.int(60)}`, version: r.int(3), losses: [2.5, 2.6] };
    default:
      return { runId: c.runId };
  }
}

/** the payload with one to three fields dropped, replaced by anything, or added */
function mutatePayload(r: Rng, c: FuzzContext, p: Record<string, unknown>): unknown {
  if (r.next() < 0.15) return value(r, c);
  for (let i = 1 + r.int(3); i > 0; i--) {
    const keys = Object.keys(p);
    const k = r.int(3);
    if (k === 0 && keys.length) delete p[pick(r, keys)];
    else if (k === 1 && keys.length) p[pick(r, keys)] = value(r, c, 1);
    else own(p, pick(r, KEYS), value(r, c, 1));
  }
  return p;
}

/** the bytes of a valid socket.io packet of a protocol event, before mutation */
function validPacket(r: Rng, c: FuzzContext): Uint8Array {
  const e = pick(r, EVENTS);
  return packValue([2, '/', [e, payload(r, c, e)], r.int(1000)]);
}

function mutateBytes(r: Rng, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  const k = r.int(5);
  if (k === 0) for (let i = 1 + r.int(8); i > 0 && out.length; i--) out[r.int(out.length)] = r.int(256);
  if (k === 1) return out.subarray(0, r.int(out.length));
  if (k === 2) {
    const at = r.int(out.length + 1);
    const ins = bytes(r, 1 + r.int(16));
    const x = new Uint8Array(out.length + ins.length);
    x.set(out.subarray(0, at));
    x.set(ins, at);
    x.set(out.subarray(at), at + ins.length);
    return x;
  }
  if (k === 3) {
    // a length or type byte near the start, set to an extreme
    if (out.length) out[r.int(Math.min(out.length, 24))] = pick(r, [0xff, 0x00, 0xdd, 0xdf, 0xdb, 0xc6, 0xc9, 0xc1, 0x7f, 0x80]);
    return out;
  }
  const a = r.int(out.length + 1);
  const seg = out.subarray(a, a + 1 + r.int(64));
  const x = new Uint8Array(out.length + seg.length);
  x.set(out);
  x.set(seg, out.length);
  return x;
}

const concat = (...parts: (number[] | Uint8Array)[]) => {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** [2, '/', ['submit', <inner>], 1] with `inner` as raw msgpack bytes */
const submitWith = (inner: Uint8Array) => concat([0x94, 0x02, 0xa1, 0x2f, 0x92, 0xa6], new TextEncoder().encode('submit'), inner, [0x01]);

/** hand-made msgpack, in a valid frame header (so msgpackr reads it) or, now and then, bare */
const framed = (r: Rng, skeleton: Uint8Array) => (r.next() < 0.85 ? msgpackFrame(skeleton) : skeleton);

/** msgpack bytes built by hand: deep nesting, huge size claims, extensions */
function crafted(r: Rng): { kind: string; raw: Uint8Array } {
  const k = r.int(3);
  if (k === 0) {
    const depth = pick(r, [100, 1000, 10_000, 100_000]);
    const nest = concat(new Uint8Array(depth).fill(pick(r, [0x91, 0x81])), [0xc0]);
    return { kind: 'deep-nesting', raw: framed(r, r.next() < 0.5 ? nest : submitWith(nest)) };
  }
  if (k === 1) {
    const huge = pick(r, [
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xdb, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
      [0xc9, 0xff, 0xff, 0xff, 0xff, 0x74],
      [0xdc, 0xff, 0xff],
      [0xde, 0xff, 0xff],
    ]);
    return { kind: 'huge-claims', raw: framed(r, r.next() < 0.5 ? concat(huge, bytes(r, r.int(32))) : submitWith(concat(huge, bytes(r, r.int(32))))) };
  }
  // an extension with a random body: typed array (0x74, with any type code), RegExp, Set, Error, references, bundles
  const type = pick(r, [0x74, 0x74, 0x78, 0x73, 0x65, 0x69, 0x70, 0x62, 0x42, 0xff, 0x00, r.int(256)]);
  const body = type === 0x74 ? concat([r.int(20)], bytes(r, r.int(64))) : bytes(r, r.int(64));
  const ext = concat([0xc8, body.length >> 8, body.length & 255, type], body);
  return { kind: 'extensions', raw: framed(r, r.next() < 0.3 ? ext : submitWith(ext)) };
}

/** a valid frame with a typed array (a submit's gradient, an eval's losses as a Float64Array) whose layout is made to lie */
function lyingLayout(r: Rng, c: FuzzContext): Uint8Array {
  const n = r.next() < 0.5 ? c.params : 1 + r.int(64);
  const arrays: unknown[] = [new Float32Array(n)];
  if (r.next() < 0.4) arrays.push(new Float64Array(1 + r.int(8)));
  const f = Uint8Array.from(packValue([2, '/', ['submit', { runId: c.runId, leaseId: `${c.runId}.0.1`, version: 0, loss: 2, grads: arrays[0], extra: arrays.slice(1) }], 1]));
  const dv = new DataView(f.buffer);
  const skeleton = dv.getUint32(0, true);
  // the placeholders: bin 8 of 9 bytes (0xc4 0x09) in the skeleton
  const at: number[] = [];
  for (let i = 4; i + 10 < 4 + skeleton; i++) if (f[i] === 0xc4 && f[i + 1] === 0x09) at.push(i + 2);
  const p = at.length ? pick(r, at) : 4;
  switch (r.int(7)) {
    case 0:
      dv.setUint32(0, pick(r, [0, 1, skeleton - 1, skeleton + 1, skeleton + 8, f.length, 0xffffffff]), true);
      return f;
    case 1:
      f[p] = pick(r, [11, 15, 16, 17, 18, 255, 8, 0]);
      return f;
    case 2:
      dv.setUint32(p + 1, pick(r, [1, 2, 7, 0xffffffff]), true);
      return f;
    case 3:
      dv.setUint32(p + 5, pick(r, [0, 1, 3, n * 4 - 1, n * 4 + 4, n * 8, 0x7fffffff, 0xffffffff]), true);
      return f;
    case 4: {
      // a non-zero padding byte, if there is padding
      const end = 4 + skeleton;
      if (end % 8) f[end] = 1 + r.int(255);
      else f[f.length - 1] ^= 0xff;
      return f;
    }
    case 5:
      return concat(f, bytes(r, 1 + r.int(16)));
    default:
      return f.subarray(0, f.length - 1 - r.int(Math.min(64, f.length - 1)));
  }
}

/** the n frames of a fuzz run */
export function* frames(seed: number, n: number, c: FuzzContext): Generator<Frame> {
  const r = new Rng(seed);
  for (let i = 0; i < n; i++) {
    const u = r.next();
    if (u < 0.12) yield { kind: 'random-bytes', raw: bytes(r, r.next() < 0.9 ? r.int(64) : r.int(70_000)) };
    else if (u < 0.17) yield { kind: 'text', raw: r.next() < 0.5 ? text(r, r.int(100)) : pick(r, ['2["hello",{}]', '0', '40', '42["submit"]', '3', '6', '']) };
    else if (u < 0.32) yield { kind: 'mutated-packet', raw: mutateBytes(r, validPacket(r, c)) };
    else if (u < 0.38) yield { kind: 'frame-layout', raw: lyingLayout(r, c) };
    else if (u < 0.45) {
      const raw = (() => {
        try {
          return packValue([pick(r, [-1, 0, 1, 2, 3, 4, 5, 6, 7, 2.5]), pick(r, ['/', '/', '/admin', '/x', '', 'no-slash', 42]), value(r, c), pick(r, [undefined, -1, 1.5, 2 ** 53, 'x', r.int(100)])]);
        } catch {
          return packValue(null);
        }
      })();
      yield { kind: 'wrong-packet', raw };
    } else if (u < 0.52) yield crafted(r);
    else if (u < 0.56) yield { kind: 'ack', raw: packValue([3, '/', [value(r, c, 2)], r.int(1_000_000)]) };
    else if (u < 0.6) {
      const k = r.int(3);
      yield { kind: 'namespace', raw: packValue(k === 0 ? [0, pick(r, ['/admin', '/x', '/']), r.next() < 0.5 ? { token: text(r, 20) } : { pid: text(r, 10), offset: text(r, 5) }, undefined] : k === 1 ? [1, pick(r, ['/', '/admin']), undefined, undefined] : [4, '/', value(r, c, 2), undefined]) };
    } else {
      const event = r.next() < 0.75 ? pick(r, EVENTS) : pick(r, NAMES);
      const args: unknown[] = [mutatePayload(r, c, payload(r, c, EVENTS.includes(event) ? event : pick(r, EVENTS)))];
      if (r.next() < 0.1) args.push(...Array.from({ length: 1 + r.int(3) }, () => value(r, c, 2)));
      if (r.next() < 0.05) args.length = 0;
      yield { kind: 'schema', event, args, ack: r.next() < 0.85 };
    }
  }
}
