import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { mirror, shadowAuthority } from './mirror.ts';
import { fakeResponse, scriptedSend, testCluster, testContext, testTarget } from './test-support.ts';
import type { UpstreamRequest } from './types.ts';

function request(body: string | null): UpstreamRequest {
  return {
    method: 'POST',
    path: '/orders?x=1',
    headers: { host: 'orders:8080', 'x-a': '1' },
    body: body === null ? null : Readable.from([Buffer.from(body)]),
    protocol: 'http1',
    onBodyChunk: () => {},
  };
}

describe('mirror layer', () => {
  it('sends a copy with the same method, path and body to the mirror cluster, host suffixed -shadow', async () => {
    const { send, calls } = scriptedSend([fakeResponse(200, { body: 'primary' })]);
    const target = {
      ...testTarget(),
      mirrors: [{ cluster: testCluster('inbound-vip|80|http|shadow.ns.svc.cluster.local'), fraction: 1 }],
    };
    const ctx = testContext({ target });
    const res = await mirror()(send)(request('hello'), ctx);
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(2);
    const copy = calls.find((c) => c.req.headers.host === 'orders-shadow:8080');
    expect(copy).toBeDefined();
    expect(copy?.req.path).toBe('/orders?x=1');
    expect(await copy?.body).toBe('hello');
  });

  it('leaves the primary alone when no mirror is chosen (fraction 0)', async () => {
    const { send, calls } = scriptedSend([fakeResponse(200)]);
    const target = { ...testTarget(), mirrors: [{ cluster: testCluster(), fraction: 0 }] };
    await mirror()(send)(request(null), testContext({ target }));
    expect(calls).toHaveLength(1);
  });

  it('mirrors the configured share of requests', async () => {
    const { send, calls } = scriptedSend([fakeResponse(200)]);
    const target = { ...testTarget(), mirrors: [{ cluster: testCluster(), fraction: 0.25 }] };
    let i = 0;
    const draws = [0.1, 0.5, 0.9, 0.2];
    const layer = mirror({ random: () => draws[i++ % draws.length]! })(send);
    for (let n = 0; n < 4; n++) await layer(request(null), testContext({ target }));
    expect(calls).toHaveLength(4 + 2);
  });

  it('never fails the primary when the mirror fails', async () => {
    const errors: unknown[] = [];
    const send = async (req: UpstreamRequest) => {
      if (req.headers.host === 'orders:8080') return fakeResponse(200);
      throw new Error('mirror down');
    };
    const target = { ...testTarget(), mirrors: [{ cluster: testCluster(), fraction: 1 }] };
    const res = await mirror({ onError: (_m, e) => errors.push(e) })(send)(
      request(null),
      testContext({ target }),
    );
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 10));
    expect(errors).toHaveLength(1);
  });

  it('suffixes the host, keeping the port', () => {
    expect(shadowAuthority('echo')).toBe('echo-shadow');
    expect(shadowAuthority('echo.ns:8080')).toBe('echo.ns-shadow:8080');
  });
});
