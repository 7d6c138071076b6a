// The fake API server on its own, over plain HTTP, against the protocol as kube-apiserver speaks it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKubeApi, type KubeObject } from './fake-kube-api.ts';

let api: FakeKubeApi;
let base: string;

const svc = (name: string, ns = 'shop'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { clusterIP: '10.96.0.1' },
});

beforeEach(async () => {
  api = new FakeKubeApi();
  base = await api.listen('127.0.0.1', 0);
});
afterEach(() => api.close());

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + path);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Opens a watch and collects its events until it ends or `count` arrived. */
async function watch(
  path: string,
  count: number,
): Promise<{ status: number; events: Record<string, unknown>[] }> {
  const ctl = new AbortController();
  const res = await fetch(base + path, { signal: ctl.signal });
  const events: Record<string, unknown>[] = [];
  if (res.status !== 200 || !res.body) return { status: res.status, events };
  let text = '';
  try {
    for await (const chunk of res.body) {
      text += Buffer.from(chunk).toString();
      const lines = text.split('\n');
      text = lines.pop() ?? '';
      for (const l of lines) events.push(JSON.parse(l) as Record<string, unknown>);
      if (events.length >= count) break;
    }
  } finally {
    ctl.abort();
  }
  return { status: 200, events };
}

const meta = (body: Record<string, unknown>) =>
  body.metadata as { resourceVersion: string; continue?: string };
const names = (body: Record<string, unknown>) => (body.items as KubeObject[]).map((i) => i.metadata.name);

describe('FakeKubeApi', () => {
  it('lists in pages with limit/continue at one resourceVersion, and a stale continue token is 410 Expired', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) api.create(svc(n));
    const first = await get('/api/v1/services?limit=2');
    expect(names(first.body)).toEqual(['a', 'b']);
    api.create(svc('f')); // not in this list: it is at a later RV
    const second = await get(`/api/v1/services?limit=2&continue=${meta(first.body).continue}`);
    const third = await get(`/api/v1/services?limit=2&continue=${meta(second.body).continue}`);
    expect([...names(second.body), ...names(third.body)]).toEqual(['c', 'd', 'e']);
    expect(meta(third.body).continue).toBeUndefined();
    expect(meta(second.body).resourceVersion).toBe(meta(first.body).resourceVersion);
    const again = await get('/api/v1/services?limit=2');
    api.create(svc('g'));
    api.compact(); // etcd compacted past the list's revision
    const expired = await get(`/api/v1/services?limit=2&continue=${meta(again.body).continue}`);
    expect(expired.status).toBe(410);
    expect(expired.body).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });

  it('lists one namespace and a fieldSelector on metadata.name', async () => {
    api.create(svc('a'));
    api.create(svc('a', 'bank'));
    api.create(svc('b', 'bank'));
    expect(names((await get('/api/v1/namespaces/bank/services')).body)).toEqual(['a', 'b']);
    expect(names((await get('/api/v1/services?fieldSelector=metadata.name%3Da')).body)).toHaveLength(2);
  });

  it('watches from a resourceVersion: replays what came after it, then live events and bookmarks', async () => {
    api.create(svc('a'));
    const rv = api.resourceVersion;
    api.create(svc('b'));
    const pending = watch(`/api/v1/services?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`, 3);
    await new Promise<void>((resolve) => {
      const check = (): void => (api.openWatches === 1 ? resolve() : void setImmediate(check));
      check();
    });
    api.delete(svc('a'));
    api.bookmark();
    const { events } = await pending;
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'DELETED', 'BOOKMARK']);
    expect((events[2] as { object: KubeObject }).object.metadata.resourceVersion).toBe(api.resourceVersion);
  });

  it('answers a watch from a compacted resourceVersion with an ERROR 410 event, or an HTTP 410 when told to', async () => {
    api.create(svc('a'));
    const old = api.resourceVersion;
    api.create(svc('b'));
    api.compact();
    api.create(svc('c'));
    const { events } = await watch(`/api/v1/services?watch=true&resourceVersion=${Number(old) - 1}`, 1);
    expect(events[0]).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410 } });
    api.faults.goneAsHttpStatus = true;
    expect((await watch(`/api/v1/services?watch=true&resourceVersion=${Number(old) - 1}`, 1)).status).toBe(
      410,
    );
  });

  it('ends a watch after timeoutSeconds', async () => {
    const { events, status } = await watch(
      `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`,
      1,
    );
    expect(status).toBe(200);
    expect(events).toEqual([]);
  });

  it('serves a CRD group only while it is installed, in discovery and in lists', async () => {
    api.uninstallCrd('security.istio.io', 'AuthorizationPolicy');
    api.uninstallCrd('security.istio.io', 'RequestAuthentication');
    expect((await get('/apis/security.istio.io/v1')).status).toBe(404);
    expect((await get('/apis/security.istio.io/v1/authorizationpolicies')).status).toBe(404);
    api.installCrd('security.istio.io', 'AuthorizationPolicy');
    const discovery = await get('/apis/security.istio.io/v1');
    expect(discovery.body.resources).toEqual([expect.objectContaining({ name: 'authorizationpolicies' })]);
    expect((await get('/apis/security.istio.io/v1/authorizationpolicies')).status).toBe(200);
  });

  it('injects faults through the request hook and records every request', async () => {
    api.faults.request = (r) => (r.path.endsWith('/pods') ? 503 : undefined);
    expect((await get('/api/v1/pods')).status).toBe(503);
    expect((await get('/api/v1/services')).status).toBe(200);
    expect(api.countRequests((r) => r.path === '/api/v1/pods')).toBe(1);
  });
});
