// The primary's admin port: worker 0's pages unless `?worker=N` asks another; a worker that does not
// run gets 503 naming it; a malformed index 400; while draining, readiness is answered here.
// Address: 127.46.0.1 (free ports).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminProxy, listenAdmin } from './admin-proxy.ts';

const IP = '127.46.0.1';

/** A worker's private admin port stand-in: answers who it is and the URL it was asked. */
async function fakeWorker(name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => res.end(`${name} ${req.url}`));
  await new Promise<void>((r) => server.listen(0, IP, r));
  return server;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${IP}:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('admin proxy', () => {
  const workers: http.Server[] = [];
  let stopping = false;
  let proxy: http.Server;
  let port: number;

  beforeAll(async () => {
    workers.push(await fakeWorker('w0'), await fakeWorker('w1'));
    const running = (i: number) => workers[i]?.listening;
    proxy = adminProxy({
      target: (i) => (running(i) ? { ip: IP, port: (workers[i]!.address() as AddressInfo).port } : undefined),
      get stopping() {
        return stopping;
      },
    });
    port = (await listenAdmin(proxy, IP, 0)).port;
  });
  afterAll(async () => {
    proxy.closeAllConnections();
    for (const s of [proxy, ...workers]) await new Promise((r) => s.close(r));
  });

  it('forwards to worker 0 unless ?worker=N asks another', async () => {
    expect(await get(port, '/config_dump')).toEqual({ status: 200, body: 'w0 /config_dump' });
    expect(await get(port, '/config_dump?worker=1')).toEqual({
      status: 200,
      body: 'w1 /config_dump?worker=1',
    });
  });

  it('answers 503 naming a worker that does not run, 400 for an index that is not one', async () => {
    expect(await get(port, '/config_dump?worker=7')).toEqual({
      status: 503,
      body: 'worker 7 is not running\n',
    });
    expect((await get(port, '/config_dump?worker=-1')).status).toBe(400);
    expect((await get(port, '/config_dump?worker=one')).body).toContain('"one"');
  });

  it('answers readiness 503 itself while the replica drains', async () => {
    stopping = true;
    expect(await get(port, '/healthz/ready?worker=1')).toEqual({
      status: 503,
      body: 'not ready: draining\n',
    });
    expect((await get(port, '/config_dump')).status).toBe(200);
    stopping = false;
  });
});
