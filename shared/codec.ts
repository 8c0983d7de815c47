// socket.io's wire format replaced by msgpack (msgpackr): one binary frame per packet, typed arrays as raw bytes
// (msgpackr's `moreTypes` extension keeps Float32Array a Float32Array on the other side, copied aligned), no base64
// and no per-element JSON. Give `parser` to both ends: new Server(http, { parser }) and io(url, { parser }).
//
// A packet is [type, nsp, data, id]. The decoder checks that shape and throws on anything else: socket.io then
// closes that one connection (its client wraps decoder.add in try/catch) and the server keeps serving.
import { Emitter } from '@socket.io/component-emitter';
import { Packr } from 'msgpackr';

const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

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

export class Encoder {
  encode(packet: Packet): Uint8Array[] {
    // binary variants (5, 6) are unnecessary: msgpack carries binary inline
    const type = packet.type === 5 ? EVENT : packet.type === 6 ? ACK : packet.type;
    return [packr.pack([type, packet.nsp, packet.data, packet.id])];
  }
}

export class MalformedFrameError extends Error {
  constructor(why: string) {
    super(`malformed frame: ${why}`);
    this.name = 'MalformedFrameError';
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

export class Decoder extends Emitter<Record<string, never>, Record<string, never>, { decoded: (p: Packet) => void }> {
  add(chunk: unknown): void {
    if (typeof chunk === 'string') throw new MalformedFrameError('text frame (this server speaks msgpack)');
    let bytes: Uint8Array;
    if (chunk instanceof Uint8Array) bytes = chunk;
    else if (chunk instanceof ArrayBuffer) bytes = new Uint8Array(chunk);
    else throw new MalformedFrameError('not binary');
    let raw: unknown;
    try {
      raw = packr.unpack(bytes);
    } catch (e) {
      throw new MalformedFrameError(`not msgpack (${(e as Error).message})`);
    }
    this.emitReserved('decoded', toPacket(raw));
  }

  destroy(): void {}
}

/** pass as `parser` to socket.io's Server and to socket.io-client's io() */
export const parser = { Encoder, Decoder };

/** msgpack of a value, the way frames are packed (for sizes and tests) */
export const packValue = (v: unknown): Uint8Array => packr.pack(v);
export const unpackValue = (b: Uint8Array): unknown => packr.unpack(b);
