// Single-connection probes of the coordinator's limits, for the report and the known-weakness tests.
import { packValue } from '../../shared/codec.ts';
import { connected, openSocket, sleep, type SimSocket } from './sim.ts';

type Ask = { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<{ code?: string }> } };

/** n cheap events at once on s: the replies by code */
async function burst(s: SimSocket, n: number): Promise<Record<string, number>> {
  const codes: Record<string, number> = {};
  const replies = await Promise.all(
    Array.from({ length: n }, () =>
      (s as unknown as Ask)
        .timeout(10_000)
        .emitWithAck('lease', { runId: '-', version: 0 })
        .then(
          (r) => r.code ?? 'ok',
          () => 'no reply',
        ),
    ),
  );
  for (const c of replies) codes[c] = (codes[c] ?? 0) + 1;
  return codes;
}

export interface RateLimitProbe {
  /** events sent in each burst */
  n: number;
  first: Record<string, number>;
  /** the same burst after leaving and re-entering the namespace on the same websocket (raw DISCONNECT, CONNECT) */
  afterReconnect: Record<string, number>;
  /** the socket.io session was renewed without a new websocket */
  renewed: boolean;
  /** the coordinator closed the websocket once the client left its only namespace */
  closed: boolean;
}

/** a burst over the per-connection rate limit, then the namespace left and (if the coordinator keeps the websocket open)
 * re-entered on the same websocket, and again */
export async function probeRateLimitReset(url: string, n = 1500): Promise<RateLimitProbe> {
  const s = openSocket(url, { reconnect: false });
  try {
    await connected(s);
    const ws = (s.io.engine as unknown as { id: string }).id;
    const first = await burst(s, n);
    const write = (p: unknown[]) => (s.io.engine as unknown as { write(b: Uint8Array): void }).write(packValue(p));
    const reconnected = new Promise<void>((ok) => s.once('connect', () => ok()));
    let closed = false;
    (s.io.engine as unknown as { once(e: 'close', f: () => void): void }).once('close', () => void (closed = true));
    write([1, '/', undefined, undefined]);
    await sleep(100);
    if (!closed) write([0, '/', {}, undefined]);
    await Promise.race([reconnected, sleep(closed ? 0 : 3000)]);
    const renewed = !closed && s.connected && (s.io.engine as unknown as { id: string }).id === ws;
    const afterReconnect = renewed ? await burst(s, n) : {};
    return { n, first, afterReconnect, renewed, closed };
  } finally {
    s.close();
  }
}
