// The attacks of the reliability suite: each is what a hostile volunteer does with a lease (`onLease`) or once
// per session (`onSession`), on top of the honest simulated worker (./sim.ts). Gradient attacks poison the real
// gradient (sign flip ×−1000, the same sent with the next lease request, a constant direction at 1000× or at 4× its
// norm, NaN/Inf, wrong labels, a replayed old gradient); protocol attacks abuse the messages (a lease answered twice,
// another worker's lease, a claimed worker id, wrong shapes, frames over maxHttpBufferSize, malformed frames, unknown
// and admin events, hoarding leases, answers the schema refuses). ./matrix.ts runs each with 2 of 10 workers attacking
// and compares the validation loss with a clean run.
import { msgpackFrame, packValue } from '../../shared/codec.ts';
import { PROTOCOL_VERSION, type Lease, type LeaseReply, type Submission } from '../../shared/protocol.ts';
import { Rng } from '../../shared/rng.ts';
import { connected, honestly, norm, openSocket, SessionEnded, type SimWorker } from './sim.ts';

export interface Attack {
  name: string;
  /** what the attackers do, in words (the report's first column) */
  tried: string;
  onLease?: (w: SimWorker, lease: Lease) => Promise<void>;
  onSession?: (w: SimWorker) => Promise<void>;
}

type F32 = Float32Array<ArrayBuffer>;

/** a fixed random unit vector of n elements (the same for every attacker of a run: they collude) */
function unit(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const v = Float32Array.from({ length: n }, () => r.normal());
  const s = norm(v);
  for (let i = 0; i < n; i++) v[i] /= s;
  return v;
}

/** the targets of a batch in another order (the same order for a batch index: colluding attackers agree) */
function shuffled(t: Int32Array, seed: number): Int32Array {
  const r = new Rng(seed);
  const out = Int32Array.from(t);
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** the honest answer with its train gradient replaced by f(gradient) */
function poisoned(f: (g: Float32Array, w: SimWorker, lease: Lease) => Float32Array) {
  return async (w: SimWorker, lease: Lease) => {
    if (!(await w.sync(lease.version))) return;
    const sub = w.compute(lease);
    if (lease.kind === 'train') sub.grads = f(sub.grads!, w, lease) as F32;
    await w.submit(sub);
  };
}

/** send something the coordinator should answer by closing the connection; true if it did (within ms) */
async function closesConnection(w: SimWorker, send: () => void, ms = 5000): Promise<boolean> {
  const closed = new Promise<boolean>((ok) => {
    const t = setTimeout(() => ok(false), ms);
    w.socket.once('disconnect', () => {
      clearTimeout(t);
      ok(true);
    });
  });
  send();
  const r = await closed;
  if (!r) w.note('the connection stayed open');
  return r;
}

/** the largest frame the coordinator takes: maxHttpBufferSize, 1 MiB or 4 bytes per parameter + 64 KiB */
const frameLimit = (w: SimWorker) => Math.max(1 << 20, w.run!.paramCount * 4 + (64 << 10));

const writeRaw = (w: SimWorker, frame: Uint8Array | string) => (w.socket.io.engine as unknown as { write(b: Uint8Array | string): void }).write(frame);

/** the admin routes a volunteer might try without the token, and what it got */
async function tryAdminHttp(w: SimWorker): Promise<void> {
  const base = w.o.url;
  const id = w.o.runId;
  const tries: [string, string, unknown?][] = [
    ['POST', `api/runs/${id}/stop`],
    ['POST', `api/runs/${id}/pause`],
    ['PATCH', `api/runs/${id}`, { weight: 1000 }],
    ['GET', 'api/runs'],
    ['GET', `api/runs/${id}/export`],
    ['POST', 'api/runs', { config: {} }],
  ];
  for (const [method, path, body] of tries) {
    const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
    if (path.endsWith('pause')) headers.authorization = 'Bearer not-the-admin-token';
    const r = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    w.count(`http ${r.status}`);
    await r.arrayBuffer();
  }
}

/** the /admin namespace with no token and a wrong one: the connect error's message */
async function tryAdminNamespace(w: SimWorker): Promise<void> {
  for (const auth of [undefined, { token: 'guess-guess-guess-guess' }, { token: 42 }]) {
    const s = openSocket(`${w.o.url}admin`, { reconnect: false, auth });
    const why = await new Promise<string>((ok) => {
      s.once('connect', () => ok('CONNECTED'));
      s.once('connect_error', (e) => ok(e.message));
    });
    s.close();
    if (why === 'CONNECTED') w.tally('ADMIN NAMESPACE OPENED');
    else w.count('admin connect_error');
    w.note(`/admin: ${why}`);
  }
}

/** a second connection of the same attacker, said hello and joined to its run (one per worker, closed with it) */
const accomplices = new WeakMap<SimWorker, Promise<{ ask<T>(e: string, p: unknown): Promise<T> }>>();
function accomplice(w: SimWorker) {
  let a = accomplices.get(w);
  if (!a) {
    a = (async () => {
      const s = openSocket(w.o.url, { reconnect: false });
      w.socket.once('disconnect', () => s.close());
      w.onClose(() => s.close());
      await connected(s);
      const ask = <T>(e: string, p: unknown) => (s as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<T> } }).timeout(10_000).emitWithAck(e, p);
      await ask('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', name: 'accomplice' });
      await ask('join', { runId: w.o.runId });
      return { ask };
    })();
    accomplices.set(w, a);
  }
  return a;
}

const sign = (g: Float32Array, f: number) => Float32Array.from(g, (x) => x * f);

const replayed = new WeakMap<SimWorker, Submission>();

export const ATTACKS: Attack[] = [
  {
    name: 'sign-flip',
    tried: 'every train gradient × −1000',
    onLease: poisoned((g) => sign(g, -1000)),
  },
  {
    name: 'constant-direction',
    tried: 'one fixed random direction (shared by the attackers) at 1000× the honest gradient norm',
    onLease: poisoned((g, w) => {
      const d = unit(g.length, w.run!.config.train.seed ^ 0xa5a5);
      const s = 1000 * norm(g);
      return Float32Array.from(d, (x) => x * s);
    }),
  },
  {
    name: 'outlier-twice',
    tried: "every train gradient × −1000, sent together with its next lease request: before 31278a3 that returned its own refused batch, and its second 1000× answer counted as the 'second opinion'; after it the other attacker could be that opinion, taken clipped",
    onLease: async (w, lease) => {
      let l: Lease | undefined = lease;
      while (l && w.active) {
        if (!(await w.sync(l.version))) return;
        const sub = w.compute(l);
        if (l.kind !== 'train') return void (await w.submit(sub));
        sub.grads = sign(sub.grads!, -1000) as F32;
        const [r, next] = await Promise.all([w.submit(sub), w.call<LeaseReply>('lease', { runId: w.o.runId, version: Math.max(0, w.version) })]);
        if (r.ok) w.tally('1000× answers acknowledged');
        l = next.ok && 'lease' in next ? next.lease : undefined;
        if (l) w.leases++;
      }
    },
  },
  {
    name: 'sub-screen-push',
    tried: 'the same fixed direction at 4× the honest norm: under the 10× norm screen, so accepted',
    onLease: poisoned((g, w) => {
      const d = unit(g.length, w.run!.config.train.seed ^ 0xa5a5);
      const s = 4 * norm(g);
      w.tally('pushes sent');
      return Float32Array.from(d, (x) => x * s);
    }),
  },
  {
    name: 'nan-inf',
    tried: 'a NaN or a −Inf in the gradient, in turn',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      if (lease.kind === 'eval') sub.losses = sub.losses!.map((v, i) => (i ? v : NaN));
      else if (w.leases % 2) sub.grads![w.leases % sub.grads!.length] = NaN;
      else sub.grads![(w.leases * 7919) % sub.grads!.length] = -Infinity;
      await w.submit(sub);
    },
  },
  {
    name: 'wrong-labels',
    tried: 'gradients of shuffled targets (the same shuffle per batch for both attackers: they collude)',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      await w.submit(w.compute(lease, (t, i) => shuffled(t, (w.run!.config.train.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0)));
    },
  },
  {
    name: 'replay',
    tried: "its first gradient again: under the old lease id, on a new lease claiming the old version, and on a new lease claiming the new version",
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const old = replayed.get(w);
      if (lease.kind !== 'train' || !old) {
        const sub = w.compute(lease);
        if (lease.kind === 'train') replayed.set(w, sub);
        await w.submit(sub);
        return;
      }
      await w.submit(old);
      if (old.version !== lease.version) await w.submit({ ...old, leaseId: lease.leaseId });
      const r = await w.submit({ ...old, leaseId: lease.leaseId, version: lease.version });
      if (r.ok) w.tally('replayed gradients accepted');
    },
  },
  {
    name: 'duplicate-lease',
    tried: 'the honest answer sent twice at once, then a third time',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      const both = await Promise.all([w.submit(sub), w.submit(sub)]);
      if (both.every((r) => r.ok)) w.tally('BOTH COPIES ACCEPTED');
      await w.submit(sub);
    },
  },
  {
    name: 'spoofed-ids',
    tried: "submits −1000× gradients under other workers' lease ids (guessed: ids are sequential) and, from a second connection, under its own first identity's outstanding lease; claims a workerId in hello, join and submit; presents a forged identity token, and its own token on a second connection while the first is up",
    onSession: async (w) => {
      await w.call('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', workerId: 'w-00000000' });
      await w.call('join', { runId: w.o.runId, workerId: 'w-00000000' });
      // another identity taken over: a made-up signature for a made-up id, and its own token used twice at once
      for (const identity of [`w-0000000000000000.${'A'.repeat(43)}`, w.identity!]) {
        const s = openSocket(w.o.url, { reconnect: false });
        try {
          await connected(s);
          const r = await (s as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<{ workerId?: string }> } }).timeout(10_000).emitWithAck('hello', { protocol: PROTOCOL_VERSION, kind: 'sim', identity });
          if (r.workerId === 'w-0000000000000000' || r.workerId === w.workerId) w.tally('IDENTITY TAKEN OVER');
        } finally {
          s.close();
        }
      }
    },
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      const bad = sub.grads && (sign(sub.grads, -1000) as F32);
      const seq = Number(lease.leaseId.split('.').at(-1));
      const prefix = lease.leaseId.slice(0, lease.leaseId.lastIndexOf('.') + 1);
      for (const d of [-1, -2, 1]) {
        if (seq + d < 1) continue;
        const r = await w.submit({ ...sub, leaseId: `${prefix}${seq + d}`, grads: bad });
        if (r.ok) w.tally('SPOOFED SUBMISSION ACCEPTED');
      }
      // a second identity answers the lease the first holds
      const other = await accomplice(w);
      const r = await other.ask<{ ok: boolean; code?: string }>('submit', { ...sub, grads: bad });
      if (r.ok) w.tally('SPOOFED SUBMISSION ACCEPTED');
      else w.count(r.code!);
      await w.call('submit', { ...sub, workerId: 'w-00000000' });
      await w.submit(sub);
    },
  },
  {
    name: 'wrong-shapes',
    tried: 'gradients of n − 1, n + 13 and 0 elements, none, a Float64Array, a plain array, a string loss; eval losses of the wrong count',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      const n = w.params!.length;
      if (lease.kind === 'eval') {
        await w.submit({ ...sub, losses: [...sub.losses!, 1] });
        return;
      }
      const f = (k: number) => new Float32Array(k) as F32;
      const k = w.leases % 6;
      // a schema refusal ('bad-message') never reaches the run, so the lease stays out: follow with a shape refusal
      if (k === 4) await w.call('submit', { ...sub, grads: new Float64Array(n) });
      if (k === 5) await w.call('submit', { ...sub, grads: Array.from(sub.grads!), loss: 'low' });
      await w.submit({ ...sub, grads: k === 0 || k === 4 ? f(n - 1) : k === 1 || k === 5 ? f(n + 13) : k === 2 ? f(0) : undefined });
    },
  },
  {
    name: 'oversized',
    tried: 'a submit with a gradient 64 KiB over maxHttpBufferSize, or a lease request with a 1.1 MiB run id',
    onLease: async (w, lease) => {
      const limit = frameLimit(w);
      const big = w.leases % 2 === 0;
      const closed = await closesConnection(w, () =>
        big
          ? w.socket.emit('submit', { runId: lease.runId, leaseId: lease.leaseId, version: lease.version, loss: 1, grads: new Float32Array((limit + (64 << 10)) / 4) }, () => {})
          : (w.socket as unknown as { emit(e: string, p: unknown, a: () => void): void }).emit('lease', { runId: 'x'.repeat(limit + (100 << 10)), version: 0 }, () => {}),
      );
      if (closed) w.tally('connections closed by the coordinator');
      throw new SessionEnded('closed');
    },
  },
  {
    name: 'malformed-msgpack',
    tried: 'raw frames: bytes that are not a frame, a frame whose skeleton is not msgpack, a text frame, a frame that is not a packet, an event without a name, a submit packet cut in half',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      const whole = packValue([2, '/', ['submit', sub], 9]);
      const frames: (Uint8Array | string)[] = [
        new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]),
        msgpackFrame(new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37])),
        '2["submit",{}]',
        packValue({ not: 'a packet' }),
        packValue([2, '/', [42], null]),
        whole.subarray(0, whole.length >> 1),
      ];
      const closed = await closesConnection(w, () => writeRaw(w, frames[w.leases % frames.length]));
      if (closed) w.tally('connections closed by the coordinator');
      throw new SessionEnded('closed');
    },
  },
  {
    name: 'unknown-events',
    tried: "events the protocol does not have ('toString', '__proto__', 'constructor', 'admin', a 1000-character name), with and without an ack, and raw 'disconnect'/'error' events; honest otherwise",
    onSession: async (w) => {
      const names = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'admin', 'pause', 'x'.repeat(1000)];
      for (const name of names) await w.call(name, { runId: w.o.runId });
      for (const name of names.slice(0, 3)) (w.socket as unknown as { emit(e: string, p: unknown): void }).emit(name, {});
      for (const name of ['disconnect', 'error', 'connect', 'newListener']) writeRaw(w, packValue([2, '/', [name, {}], null]));
    },
    onLease: async (w, lease) => {
      await w.call(`not-an-event-${w.leases}`, {});
      await honestly(w, lease);
    },
  },
  {
    name: 'admin-events',
    tried: "'pause', 'stop', 'weight', 'export' as socket events; the /admin namespace with no or a wrong token; the admin HTTP routes (stop, pause, weight, list, export, create) without the token; honest otherwise",
    onSession: async (w) => {
      for (const e of ['pause', 'stop', 'resume', 'weight', 'export', 'runs', 'status']) await w.call(e, { runId: w.o.runId, weight: 1000 });
      await tryAdminNamespace(w);
      await tryAdminHttp(w);
    },
  },
  {
    name: 'invalid-answers',
    tried: 'answers every lease with something the schema refuses: an Inf or NaN loss, a Float64Array gradient',
    onLease: async (w, lease) => {
      if (!(await w.sync(lease.version))) return;
      const sub = w.compute(lease);
      const k = w.leases % 3;
      await w.call('submit', k === 0 ? { ...sub, loss: Infinity } : k === 1 ? { ...sub, loss: NaN } : { ...sub, grads: sub.grads && Float64Array.from(sub.grads) });
    },
  },
  {
    name: 'lease-hoarding',
    tried: 'asks for a lease every 25 ms (under the rate limit, ignoring the wait it is told) and never answers',
    onSession: async (w) => {
      while (w.active) {
        const r = await w.call<{ ok: boolean; code?: string; lease?: Lease }>('lease', { runId: w.o.runId, version: Math.max(0, w.version) });
        if (r.lease) w.tally('leases hoarded');
        else if (!r.ok && r.code !== 'rate-limited') return;
        await w.rest(25);
      }
    },
  },
];

/** the attacks that hold a run up rather than poison it (known weaknesses: reported within a time budget) */
export const LIVENESS = ['lease-hoarding', 'invalid-answers'];

export const attackByName = (name: string): Attack => {
  const a = ATTACKS.find((x) => x.name === name);
  if (!a) throw new Error(`no attack '${name}' (attacks: ${ATTACKS.map((x) => x.name).join(', ')})`);
  return a;
};
