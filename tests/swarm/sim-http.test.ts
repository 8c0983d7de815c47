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

  it('a kept-alive connection the server closed while idle is not reused; one it closes as the request goes out is retried once', async () => {
    let n = 0;
    const conns = new Set<import('node:net').Socket>();
    const server = createHttp((_req, res) => res.writeHead(200, { 'content-length': 3 }).end('abc'));
    server.on('connection', (c) => conns.add(c));
    const url = await listen(server);
    expect(await drain(new URL('/a', url))).toEqual({ status: 200, bytes: 3 });
    // the server drops the idle connection: the next GET opens another
    for (const c of conns) c.destroy();
    conns.clear();
    await new Promise((ok) => setTimeout(ok, 50));
    expect(await drain(new URL('/b', url))).toEqual({ status: 200, bytes: 3 });
    expect(conns.size).toBe(1);
    // the server resets the kept-alive connection just as the next request is written: that GET fails, and is
    // retried once on a fresh connection
    const raw = createNet((sock) => {
      const conn = ++n;
      let requests = 0;
      sock.on('data', () => {
        if (conn === 1 && ++requests === 2) sock.resetAndDestroy(); // the kept-alive connection, reset under the next request
        else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const rawUrl = await listen(raw);
    expect(await drain(new URL('/1', rawUrl))).toEqual({ status: 200, bytes: 2 });
    expect(await drain(new URL('/2', rawUrl))).toEqual({ status: 200, bytes: 2 });
    expect(n).toBe(2);
  });

  it('refuses a body without Content-Length and a connection that ends early', async () => {
    const chunked = await listen(createHttp((_req, res) => res.writeHead(200).end('abc'))); // chunked encoding
    await expect(drain(new URL('/', chunked))).rejects.toThrow(/without Content-Length/);
    const short = await listen(createNet((sock) => sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'))));
    await expect(drain(new URL('/', short))).rejects.toThrow(/closed before the response ended/);
  });
});
