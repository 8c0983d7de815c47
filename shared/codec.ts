// socket.io's wire format replaced by our own binary frames: one frame per packet (a packet with over 1 MiB of arrays:
// a head and chunks, see below), typed arrays as raw bytes (no base64, no per-element JSON). Give `parser` to both ends: new Server(http,
// { parser }) and io(url, { parser }). Browser-safe: DataView and Uint8Array only, no Node Buffer.
//
// A frame is a msgpack "skeleton" of the packet with every typed array lifted out, then the arrays' bytes:
//
//   [u32 LE skeleton length][skeleton: msgpack][zero pad to 8][blob 0][zero pad to 8][blob 1] ... (nothing after)
//
// In the skeleton each lifted ArrayBufferView (or ArrayBuffer) found in arrays and plain objects stands as a
// placeholder: a 9-byte msgpack bin [kind u8][blob index u32 LE][byte length u32 LE] (kind: msgpackr's typed array
// codes, 16 ArrayBuffer, 17 DataView). Blobs lie in index order, each at an offset from the frame's start that is a
// multiple of 8, so when the frame itself starts 8-aligned in its ArrayBuffer (ws hands a large message over in its
// own allocation) the decoder returns views into the frame. A misaligned
// blob is copied; an ArrayBuffer is always copied (it cannot be a view).
//
// A packet is [type, nsp, data, id]. The decoder checks the frame's layout (every length inside the frame, each
// placeholder index used once, zero padding, no trailing bytes: nothing is allocated from a length field before it
// is checked against the bytes actually there) and the packet's shape, and throws MalformedFrameError on anything
// else: socket.io then closes that one connection (its client wraps decoder.add in try/catch) and the server keeps
// serving.
import { Emitter } from '@socket.io/component-emitter';
import { Packr } from 'msgpackr';

// moreTypes off: a placeholder packs as a plain bin in Node as in the browser (with it, msgpackr wraps any
// Uint8Array that is not a Node Buffer in its typed-array extension); structuredClone: false refuses msgpackr's
// reference extensions when unpacking, so a skeleton is a tree
const packr = new Packr({ moreTypes: false, useRecords: false, mapsAsObjects: true, structuredClone: false });

/** socket.io packet types (socket.io-parser's PacketType) */
const CONNECT = 0;
const DISCONNECT = 1;
const EVENT = 2;
const ACK = 3;
const CONNECT_ERROR = 4;

export interface Packet {
  type: number;
  nsp: string;
  data?: unknown;
  id?: number;
}

export class MalformedFrameError extends Error {
  constructor(why: string) {
    super(`malformed frame: ${why}`);
    this.name = 'MalformedFrameError';
  }
}

// ---- frames ------------------------------------------------------------------------------------------------

/** the largest skeleton a decoder accepts */
export const MAX_SKELETON = 1 << 20;

/** the skeleton length before it */
const HEADER = 4;
/** blobs start at multiples of this from the frame's start (the widest element, Float64 / BigInt64) */
const ALIGN = 8;
/** a placeholder's bytes: kind u8, index u32 LE, byteLength u32 LE */
const PLACEHOLDER = 9;

type TypedArrayCtor = { new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): ArrayBufferView; BYTES_PER_ELEMENT: number };
/** msgpackr's typed array codes, so a frame reads the same in a hex dump */
const KINDS: TypedArrayCtor[] = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
const KIND_OF = new Map(KINDS.map((c, k) => [c.name, k]));
const ARRAY_BUFFER = 16;
const DATA_VIEW = 17;

/** n rounded up to a multiple of ALIGN (arithmetic, not bitwise: offsets may pass 2³¹) */
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const isPlain = (v: object) => {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
};

/** o[key] = v, as an own property even for '__proto__' */
function put(o: Record<string, unknown> | unknown[], key: string | number, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else (o as Record<string | number, unknown>)[key] = v;
}

function kindOf(v: ArrayBufferView): number {
  if (v instanceof DataView) return DATA_VIEW;
  // a Buffer or any other subclass reports its base type here
  const k = KIND_OF.get((v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]);
  if (k === undefined) throw new TypeError(`cannot frame a ${v.constructor.name}`);
  return k;
}

/** v with every ArrayBufferView / ArrayBuffer in its arrays and plain objects replaced by a placeholder (copied on write) */
function lift(v: unknown, blobs: Uint8Array[]): unknown {
  if (v === null || typeof v !== 'object') return v;
  const view = ArrayBuffer.isView(v);
  if (view || v instanceof ArrayBuffer) {
    const bytes = view ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v);
    if (bytes.byteLength > 0xffffffff) throw new RangeError(`a ${bytes.byteLength}-byte array is over a frame's 4 GiB per array`);
    const p = new Uint8Array(PLACEHOLDER);
    const d = new DataView(p.buffer);
    p[0] = view ? kindOf(v) : ARRAY_BUFFER;
    d.setUint32(1, blobs.length, true);
    d.setUint32(5, bytes.byteLength, true);
    blobs.push(bytes);
    return p;
  }
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = lift(v[i], blobs);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  if (!isPlain(v)) return v; // Date, Map, Set, ...: msgpackr's own
  let out: Record<string, unknown> | undefined;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const x = lift(o[k], blobs);
    if (x !== o[k]) put((out ??= { ...o }), k, x);
  }
  return out ?? v;
}

/** the frame of any value (a socket.io packet is one): its typed arrays as aligned raw bytes after the skeleton */
export function encodeFrame(value: unknown): Uint8Array {
  const blobs: Uint8Array[] = [];
  return frameOf(packr.pack(lift(value, blobs)), blobs);
}

function frameOf(skeleton: Uint8Array, blobs: Uint8Array[]): Uint8Array {
  let end = HEADER + skeleton.byteLength;
  const at: number[] = [];
  for (const b of blobs) {
    end = align(end);
    at.push(end);
    end += b.byteLength;
  }
  const out = new Uint8Array(end);
  new DataView(out.buffer).setUint32(0, skeleton.byteLength, true);
  out.set(skeleton, HEADER);
  for (let i = 0; i < blobs.length; i++) out.set(blobs[i], at[i]);
  return out;
}

/** a placeholder found in the skeleton, and where it stands */
interface Slot {
  holder: unknown[] | Record<string, unknown>;
  key: string | number;
  kind: number;
  byteLength: number;
}

/** the placeholders in the skeleton's arrays and plain objects, by index (checked: kinds, each index once) */
function slots(root: unknown[]): Slot[] {
  const found: (Slot & { index: number })[] = [];
  const stack: (unknown[] | Record<string, unknown>)[] = [root];
  const visit = (holder: unknown[] | Record<string, unknown>, key: string | number, v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    if (v instanceof Uint8Array) {
      if (v.byteLength !== PLACEHOLDER) throw new MalformedFrameError(`a ${v.byteLength}-byte binary in the skeleton (placeholders are ${PLACEHOLDER} bytes; arrays travel after it)`);
      const d = new DataView(v.buffer, v.byteOffset, PLACEHOLDER);
      const kind = v[0];
      if (!(kind < KINDS.length || kind === ARRAY_BUFFER || kind === DATA_VIEW)) throw new MalformedFrameError(`placeholder of unknown kind ${kind}`);
      found.push({ holder, key, kind, index: d.getUint32(1, true), byteLength: d.getUint32(5, true) });
    } else if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      throw new MalformedFrameError('a typed array inside the skeleton (arrays travel after it)');
    } else if (Array.isArray(v) || isPlain(v)) stack.push(v as unknown[] | Record<string, unknown>);
  };
  while (stack.length) {
    const c = stack.pop()!;
    if (Array.isArray(c)) for (let i = 0; i < c.length; i++) visit(c, i, c[i]);
    else for (const k of Object.keys(c)) visit(c, k, c[k]);
  }
  const byIndex: Slot[] = new Array(found.length);
  for (const s of found) {
    if (s.index >= found.length) throw new MalformedFrameError(`placeholder index ${s.index} out of range (${found.length} placeholder(s))`);
    if (byIndex[s.index]) throw new MalformedFrameError(`placeholder index ${s.index} used twice`);
    byIndex[s.index] = s;
  }
  return byIndex;
}

/** the value of a frame: typed arrays are views into `frame` where aligned (copies otherwise) */
export function decodeFrame(frame: Uint8Array): unknown {
  const n = frame.byteLength;
  if (n < HEADER) throw new MalformedFrameError(`${n} byte(s), less than the ${HEADER}-byte header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, n);
  const skeletonBytes = dv.getUint32(0, true);
  if (skeletonBytes === 0 || skeletonBytes > n - HEADER) throw new MalformedFrameError(`a ${skeletonBytes}-byte skeleton in a ${n}-byte frame`);
  // real skeletons are a few hundred bytes (a run's config and vocabulary at most a few KiB); a frame of millions of
  // tiny msgpack values would unpack into a huge object tree
  if (skeletonBytes > MAX_SKELETON) throw new MalformedFrameError(`a ${skeletonBytes}-byte skeleton (at most ${MAX_SKELETON}; bulk data travels as typed arrays)`);
  let skeleton: unknown;
  try {
    skeleton = packr.unpack(frame.subarray(HEADER, HEADER + skeletonBytes));
  } catch (e) {
    throw new MalformedFrameError(`the skeleton is not msgpack (${(e as Error).message})`);
  }
  const root = [skeleton];
  const found = slots(root);
  // the layout: every blob inside the frame, zero padding before each, nothing after the last
  let end = HEADER + skeletonBytes;
  const at: number[] = new Array(found.length);
  for (let i = 0; i < found.length; i++) {
    const s = found[i];
    const start = align(end);
    if (start > n || s.byteLength > n - start) throw new MalformedFrameError(`blob ${i} (${s.byteLength} bytes at ${start}) runs past the frame's end (${n} bytes)`);
    for (let k = end; k < start; k++) if (frame[k] !== 0) throw new MalformedFrameError(`non-zero padding before blob ${i}`);
    const size = s.kind < KINDS.length ? KINDS[s.kind].BYTES_PER_ELEMENT : 1;
    if (s.byteLength % size) throw new MalformedFrameError(`blob ${i}: ${s.byteLength} bytes is not a whole number of ${size}-byte elements`);
    at[i] = start;
    end = start + s.byteLength;
  }
  if (end !== n) throw new MalformedFrameError(`${n - end} byte(s) after the ${found.length ? 'last array' : 'skeleton'}`);
  const buf = frame.buffer;
  for (let i = 0; i < found.length; i++) {
    const { holder, key, kind, byteLength } = found[i];
    const o = frame.byteOffset + at[i];
    let v: unknown;
    if (kind === ARRAY_BUFFER) v = buf.slice(o, o + byteLength);
    else if (kind === DATA_VIEW) v = new DataView(buf, o, byteLength);
    else {
      const C = KINDS[kind];
      const len = byteLength / C.BYTES_PER_ELEMENT;
      // a copy (a fresh ArrayBuffer is aligned) only where the view would be misaligned
      v = o % C.BYTES_PER_ELEMENT === 0 ? new C(buf, o, len) : new C(buf.slice(o, o + byteLength), 0, len);
    }
    put(holder, key, v);
  }
  return root[0];
}

// ---- large packets: a head, then the arrays in chunks ---------------------------------------------------------
//
// A packet whose arrays hold over CHUNK_BYTES in all (a gradient) is not one frame but several messages:
//
//   head:    [u32 LE skeleton length + HEAD_FLAG][u32 LE chunk count][skeleton: msgpack]
//   chunks:  each array's bytes, in placeholder order, cut into CHUNK_BYTES pieces (the last of an array shorter)
//
// Why: ws assembles a whole message in memory before anyone sees it (its 64 KiB reads, then one copy joining them), so
// a 40 MB gradient in one frame held 2 × 40 MB at the coordinator, and a frame was only known to be large once it was
// half read. Chunked, the decoder allocates each array once, at its exact size, when the head arrives, and copies
// every chunk into place as it comes (one copy, as before); the coordinator's ingest gate sees from the head alone that
// a gradient is starting and can hold the rest back in TCP; and the sender sends views of its arrays, no copy. Small
// packets (every other message) stay one frame. The head flag cannot start a frame: a frame's skeleton is at most
// MAX_SKELETON bytes.

/** arrays over this many bytes in all travel in chunks of this size after a head */
export const CHUNK_BYTES = 1 << 20;
const HEAD_FLAG = 0x80000000;
const HEAD_HEADER = 8;

/** the messages that carry a value: one frame, or a head and its chunks (views of the value's arrays, not copies) */
export function encodeMessages(value: unknown): Uint8Array[] {
  const blobs: Uint8Array[] = [];
  const skeleton = packr.pack(lift(value, blobs));
  if (blobs.reduce((a, b) => a + b.byteLength, 0) <= CHUNK_BYTES) return [frameOf(skeleton, blobs)];
  if (skeleton.byteLength > MAX_SKELETON) throw new RangeError(`a ${skeleton.byteLength}-byte skeleton is over ${MAX_SKELETON} bytes`);
  const chunks: Uint8Array[] = [];
  for (const b of blobs) for (let o = 0; o < b.byteLength; o += CHUNK_BYTES) chunks.push(b.subarray(o, Math.min(o + CHUNK_BYTES, b.byteLength)));
  const head = new Uint8Array(HEAD_HEADER + skeleton.byteLength);
  const d = new DataView(head.buffer);
  d.setUint32(0, HEAD_FLAG + skeleton.byteLength, true);
  d.setUint32(4, chunks.length, true);
  head.set(skeleton, HEAD_HEADER);
  return [head, ...chunks];
}

/** the chunk count a head message announces, or undefined if `m` is not a head (the coordinator's ingest gate peeks) */
export function headChunks(m: Uint8Array): number | undefined {
  if (m.byteLength < HEAD_HEADER) return undefined;
  const d = new DataView(m.buffer, m.byteOffset, HEAD_HEADER);
  return d.getUint32(0, true) >= HEAD_FLAG ? d.getUint32(4, true) : undefined;
}

/** a large packet being put together from its chunks */
interface Assembly {
  root: unknown[];
  found: Slot[];
  bufs: (ArrayBuffer | undefined)[];
  /** the array the next chunk belongs to, and where in it */
  blob: number;
  offset: number;
  chunksLeft: number;
}

/** a head's skeleton, checked, and the arrays it announces allocated; limit: the most array bytes this end takes */
function startAssembly(head: Uint8Array, limit: number): Assembly {
  const n = head.byteLength;
  const d = new DataView(head.buffer, head.byteOffset, n);
  const skeletonBytes = d.getUint32(0, true) - HEAD_FLAG;
  const chunks = d.getUint32(4, true);
  if (skeletonBytes === 0 || skeletonBytes > MAX_SKELETON || skeletonBytes !== n - HEAD_HEADER) {
    throw new MalformedFrameError(`a head of ${n} bytes announcing a ${skeletonBytes}-byte skeleton (it must be the rest of the head, at most ${MAX_SKELETON})`);
  }
  let skeleton: unknown;
  try {
    skeleton = packr.unpack(head.subarray(HEAD_HEADER));
  } catch (e) {
    throw new MalformedFrameError(`the skeleton is not msgpack (${(e as Error).message})`);
  }
  const root = [skeleton];
  const found = slots(root);
  let total = 0;
  let expected = 0;
  for (let i = 0; i < found.length; i++) {
    const s = found[i];
    const size = s.kind < KINDS.length ? KINDS[s.kind].BYTES_PER_ELEMENT : 1;
    if (s.byteLength % size) throw new MalformedFrameError(`blob ${i}: ${s.byteLength} bytes is not a whole number of ${size}-byte elements`);
    total += s.byteLength;
    expected += Math.ceil(s.byteLength / CHUNK_BYTES);
  }
  if (total <= CHUNK_BYTES) throw new MalformedFrameError(`a head for ${total} bytes of arrays (up to ${CHUNK_BYTES} they travel in one frame)`);
  // nothing is allocated before this check: a head is a few bytes, the arrays it announces may not be
  if (total > limit) throw new MalformedFrameError(`a head announcing ${total} bytes of arrays, over this end's limit of ${limit}`);
  if (chunks !== expected) throw new MalformedFrameError(`a head announcing ${chunks} chunk(s) for arrays that take ${expected}`);
  // each array is allocated when its first chunk comes: a sender the coordinator's ingest gate holds back after its
  // head costs only the head
  const a: Assembly = { root, found, bufs: [], blob: 0, offset: 0, chunksLeft: chunks };
  while (a.blob < found.length && found[a.blob].byteLength === 0) a.blob++;
  return a;
}

/** one chunk into place; the packet's value once the last is in */
function addChunk(a: Assembly, chunk: Uint8Array, allocate: (byteLength: number) => ArrayBuffer): unknown {
  const len = a.found[a.blob].byteLength;
  const want = Math.min(CHUNK_BYTES, len - a.offset);
  if (chunk.byteLength !== want) throw new MalformedFrameError(`a chunk of ${chunk.byteLength} bytes where blob ${a.blob} needs ${want} next`);
  new Uint8Array((a.bufs[a.blob] ??= allocate(len)), a.offset, want).set(chunk);
  a.offset += want;
  a.chunksLeft--;
  if (a.offset === len) {
    a.offset = 0;
    do a.blob++;
    while (a.blob < a.found.length && a.found[a.blob].byteLength === 0);
  }
  if (a.chunksLeft > 0) return undefined;
  for (let i = 0; i < a.found.length; i++) {
    const { holder, key, kind } = a.found[i];
    const buf = a.bufs[i] ?? new ArrayBuffer(0);
    put(holder, key, kind === ARRAY_BUFFER ? buf : kind === DATA_VIEW ? new DataView(buf) : new KINDS[kind](buf));
  }
  return a.root[0];
}

// ---- socket.io parser ----------------------------------------------------------------------------------------

export class Encoder {
  encode(packet: Packet): Uint8Array[] {
    // binary variants (5, 6) are unnecessary: frames carry binary inline
    const type = packet.type === 5 ? EVENT : packet.type === 6 ? ACK : packet.type;
    return encodeMessages([type, packet.nsp, packet.data, packet.id]);
  }
}

function toPacket(raw: unknown): Packet {
  if (!Array.isArray(raw) || raw.length !== 4) throw new MalformedFrameError('not a [type, nsp, data, id] array');
  const [type, nsp, data, id] = raw as [unknown, unknown, unknown, unknown];
  if (typeof type !== 'number' || !Number.isInteger(type) || type < CONNECT || type > CONNECT_ERROR) throw new MalformedFrameError(`unknown packet type ${String(type)}`);
  if (typeof nsp !== 'string' || !nsp.startsWith('/')) throw new MalformedFrameError('namespace must be a string starting with /');
  if (id !== undefined && id !== null && !(typeof id === 'number' && Number.isInteger(id) && id >= 0)) throw new MalformedFrameError('ack id must be a whole number');
  if (type === EVENT && !(Array.isArray(data) && data.length >= 1 && typeof data[0] === 'string')) throw new MalformedFrameError('an event must be [name, ...args]');
  if (type === ACK && !Array.isArray(data)) throw new MalformedFrameError('an ack must carry an array');
  if (type === DISCONNECT && data !== undefined && data !== null) throw new MalformedFrameError('a disconnect carries no data');
  const p: Packet = { type, nsp };
  if (data !== undefined && data !== null) p.data = data;
  if (typeof id === 'number') p.id = id;
  return p;
}

export interface ParserLimits {
  /** the most array bytes a large packet may announce (the coordinator: its largest model's gradient) */
  maxPacketBytes: number;
  /** where a large packet's arrays go (an ArrayBuffer of exactly byteLength): the coordinator recycles gradients' */
  allocate?: (byteLength: number) => ArrayBuffer;
  /** told the size of each chunk once it is copied into its array (the coordinator frees the reads' garbage young) */
  copied?: (byteLength: number) => void;
}

const fresh = (n: number) => new ArrayBuffer(n);

export class Decoder extends Emitter<Record<string, never>, Record<string, never>, { decoded: (p: Packet) => void }> {
  private assembly?: Assembly;

  constructor(private readonly limits: ParserLimits = { maxPacketBytes: 1 << 30 }) {
    super();
  }

  add(chunk: unknown): void {
    if (typeof chunk === 'string') throw new MalformedFrameError('text frame (this server speaks binary frames)');
    let bytes: Uint8Array;
    if (chunk instanceof Uint8Array) bytes = chunk;
    else if (chunk instanceof ArrayBuffer) bytes = new Uint8Array(chunk);
    else throw new MalformedFrameError('not binary');
    if (this.assembly) {
      const value = addChunk(this.assembly, bytes, this.limits.allocate ?? fresh);
      this.limits.copied?.(bytes.byteLength);
      if (value === undefined) return;
      this.assembly = undefined;
      this.emitReserved('decoded', toPacket(value));
    } else if (headChunks(bytes) !== undefined) this.assembly = startAssembly(bytes, this.limits.maxPacketBytes);
    else this.emitReserved('decoded', toPacket(decodeFrame(bytes)));
  }

  destroy(): void {
    this.assembly = undefined;
  }
}

/**
 * a `parser` for socket.io's Server or socket.io-client's io(); `limits` is read at every large packet, so an owner
 * may raise it later (the coordinator does when it adds a run with a larger model)
 */
export function createParser(limits: ParserLimits = { maxPacketBytes: 1 << 30 }) {
  return {
    Encoder,
    Decoder: class extends Decoder {
      constructor() {
        super(limits);
      }
    },
  };
}

/** the parser of the workers (the coordinator makes its own, with its limit) */
export const parser = createParser();

/** a value framed the way packets are, and back (for sizes, tests and fuzzers) */
export const packValue = encodeFrame;
export const unpackValue = decodeFrame;

/** a frame around hand-made msgpack bytes as its skeleton, with no arrays after it (tests and fuzzers) */
export function msgpackFrame(skeleton: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + skeleton.byteLength);
  new DataView(out.buffer).setUint32(0, skeleton.byteLength, true);
  out.set(skeleton, HEADER);
  return out;
}
