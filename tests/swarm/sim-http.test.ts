// The simulated workers' minimal HTTP GET (bench/swarm-sim.ts drain: one reused read buffer, keep-alive, Content-Length
// bodies), which the swarm benchmark's weights downloads go through: byte counts, statuses, a head split across
// reads, a kept-alive connection the server closed, and a response it cannot read.
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createNet, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { drain } from '../../bench/swarm-sim.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';

const seed = freshSeed();
const rng = new Rng(seed);
const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen<T extends Server | ReturnType<typeof createNet>>(s: T): Promise<string> {
  servers.push(s);
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe(`simulated workers' GET (seed ${seed})`, () => {
  it('counts every byte of large and empty bodies, over one kept-alive connection, and reads a 404', async () => {
    const sizes = [5_000_011 + rng.int(1000), 0, 1, 262_144, 262_145];
    const sockets = new Set<unknown>();
    const gone = JSON.stringify({ error: 'gone', version: 7 });
    const url = await listen(
      createHttp((req, res) => {
        sockets.add(req.socket);
        const i = Number(req.url!.slice(1));
        if (i >= sizes.length) return void res.writeHead(404, { 'content-length': gone.length }).end(gone);
        res.writeHead(200, { 'content-length': sizes[i] }).end(Buffer.alloc(sizes[i], 7));
      }),
    );
    for (let i = 0; i < sizes.length; i++) expect(await drain(new URL(`/${i}`, url))).toEqual({ status: 200, bytes: sizes[i] });
    expect(await drain(new URL('/99', url))).toEqual({ status: 404, bytes: gone.length });
    expect(sockets.size).toBe(1);
  });

  it('reads a head that arrives in pieces, and body bytes in the read that ends it', async () => {
    const body = 'x'.repeat(1000 + rng.int(1000));
    const url = await listen(
      createNet((sock) => {
        sock.once('data', async () => {
          const all = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
          let at = 0;
          for (const cut of [5, 21, all.indexOf('\r\n\r\n') + 2, all.indexOf('\r\n\r\n') + 9, all.length]) {
            sock.write(all.slice(at, cut));
            at = cut;
            await new Promise((ok) => setTimeout(ok, 20));
          }
        });
      }),
    );
    expect(await drain(new URL('/w', url))).toEqual({ status: 200, bytes: body.length });
  });

  it('retries once on a fresh connection when the kept-alive one was closed while idle', async () => {
    const server = createHttp((_req, res) => res.writeHead(200, { 'content-length': 3 }).end('abc'));
    server.keepAliveTimeout = 50;
    const url = await listen(server);
    expect(await drain(new URL('/a', url))).toEqual({ status: 200, bytes: 3 });
    await new Promise((ok) => setTimeout(ok, 200)); // the server has closed the idle connection
    expect(await drain(new URL('/b', url))).toEqual({ status: 200, bytes: 3 });
  });

  it('refuses a body without Content-Length and a connection that ends early', async () => {
    const chunked = await listen(createHttp((_req, res) => res.writeHead(200).end('abc'))); // chunked encoding
    await expect(drain(new URL('/', chunked))).rejects.toThrow(/without Content-Length/);
    const short = await listen(createNet((sock) => sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'))));
    await expect(drain(new URL('/', short))).rejects.toThrow(/closed before the response ended/);
  });
});
