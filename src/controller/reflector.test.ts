import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeKubeApi, type KubeObject } from '../../test/helpers/fake-kube-api.ts';
import { Backoff } from './backoff.ts';
import { allowPlainHttp } from './kube-config.ts';
import { Reflector, type RestartReason } from './reflector.ts';
import type { KubeDocument } from './slice-source.ts';
import { type WatchedKind, watchedKinds } from './watched-kinds.ts';

const kinds = watchedKinds('istio-system');
const kindOf = (name: string): WatchedKind => kinds.find((k) => k.kind === name) as WatchedKind;

function pod(name: string, ip: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { app: 'a' }, managedFields: [{ manager: 'kubectl' }] },
    spec: {
      serviceAccountName: 'sa',
      containers: [{ name: 'c', image: 'x', env: [{ name: 'E', value: '1' }] }],
    },
    status: {
      phase: 'Running',
      podIP: ip,
      conditions: [{ type: 'Ready', status: 'True' }],
      hostIP: '1.1.1.1',
    },
    ...extra,
  };
}

let api: FakeKubeApi;
let kc: KubeConfig;
const started: Reflector[] = [];

beforeEach(async () => {
  api = new FakeKubeApi();
  const server = await api.listen('127.0.0.1', 0);
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: false }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  allowPlainHttp(kc);
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
  await api.close();
});

interface Run {
  reflector: Reflector;
  restarts: RestartReason[];
  relists: number[];
  logs: string[];
}

function run(kind: WatchedKind, opts: { pageSize?: number; stallTimeoutMs?: number } = {}): Run {
  const restarts: RestartReason[] = [];
  const relists: number[] = [];
  const logs: string[] = [];
  const reflector = new Reflector({
    kubeConfig: kc,
    kind,
    handler: { upsert: () => {}, remove: () => {}, synced: () => {} },
    log: (_level, text) => logs.push(text),
    onRestart: (r) => restarts.push(r),
    onRelist: () => relists.push(1),
    pageSize: opts.pageSize ?? 500,
    stallTimeoutMs: opts.stallTimeoutMs ?? 60_000,
    backoff: new Backoff({ initialMs: 20, maxMs: 100 }),
    absentRetryMs: 50,
  });
  started.push(reflector);
  reflector.start();
  return { reflector, restarts, relists, logs };
}

const ips = (r: Reflector): string[] =>
  [...r.values()].map((d) => `${d.metadata.name}=${(d.status as { podIP: string }).podIP}`).sort();
const wait = (fn: () => void): Promise<void> => vi.waitFor(fn, { timeout: 5000, interval: 10 });
const lists = (): number => api.countRequests((r) => r.path === '/api/v1/pods' && !r.query.has('watch'));

describe('Reflector against the fake API server, through @kubernetes/client-node', () => {
  it('lists in pages from the watch cache, sends the bearer token, then watches from the list RV with bookmarks', async () => {
    for (let i = 0; i < 5; i++) api.create(pod(`p${i}`, `10.0.0.${i}`));
    const { reflector } = run(kindOf('Pod'), { pageSize: 2 });
    await wait(() => expect(reflector.synced).toBe(true));
    expect(reflector.size).toBe(5);
    const listCalls = api.requests.filter((r) => r.path === '/api/v1/pods' && !r.query.has('watch'));
    expect(listCalls.map((r) => r.query.get('limit'))).toEqual(['2', '2', '2']);
    expect(listCalls.slice(1).every((r) => r.query.has('continue'))).toBe(true);
    await wait(() => expect(api.openWatches).toBe(1));
    const watchCall = api.requests.find((r) => r.query.get('watch') === 'true');
    expect(watchCall?.query.get('resourceVersion')).toBe(api.resourceVersion);
    expect(watchCall?.query.get('allowWatchBookmarks')).toBe('true');
    expect(Number(watchCall?.query.get('timeoutSeconds'))).toBeGreaterThan(0);
  });

  it('keeps only what the waypoint reads of a Pod', async () => {
    api.create(pod('p', '10.0.0.1'));
    const { reflector } = run(kindOf('Pod'));
    await wait(() => expect(reflector.size).toBe(1));
    const doc = [...reflector.values()][0] as KubeDocument;
    expect(doc.metadata.managedFields).toBeUndefined();
    expect(doc.metadata.labels).toEqual({ app: 'a' });
    expect(doc.spec).toEqual({ serviceAccountName: 'sa', containers: [{ name: 'c' }] });
    expect(doc.status).toMatchObject({ phase: 'Running', podIP: '10.0.0.1' });
    expect((doc.status as Record<string, unknown>).hostIP).toBeUndefined();
  });

  it('follows creates, updates and deletes, and re-watches from the last RV when the server ends a watch', async () => {
    api.create(pod('a', '10.0.0.1'));
    const { reflector, restarts } = run(kindOf('Pod'));
    await wait(() => expect(api.openWatches).toBe(1));
    api.update(pod('a', '10.0.0.9'));
    api.create(pod('b', '10.0.0.2'));
    await wait(() => expect(ips(reflector)).toEqual(['a=10.0.0.9', 'b=10.0.0.2']));
    api.bookmark();
    api.closeWatches();
    await wait(() => expect(api.openWatches).toBe(1));
    api.delete(pod('a', ''));
    await wait(() => expect(ips(reflector)).toEqual(['b=10.0.0.2']));
    expect(restarts).toContain('watch_ended');
    expect(lists()).toBe(1);
  });

  it('re-lists on 410 as an ERROR event, and what was deleted meanwhile is removed', async () => {
    api.create(pod('a', '10.0.0.1'));
    api.create(pod('b', '10.0.0.2'));
    const { reflector, relists } = run(kindOf('Pod'));
    await wait(() => expect(api.openWatches).toBe(1));
    api.stallOpenWatches(); // the changes below are missed on the old watch
    api.delete(pod('a', ''));
    api.update(pod('b', '10.0.0.3'));
    api.compact();
    api.goneOpenWatches();
    await wait(() => expect(ips(reflector)).toEqual(['b=10.0.0.3']));
    expect(relists.length).toBeGreaterThanOrEqual(1);
  });

  it('re-lists on 410 as an HTTP status on the watch', async () => {
    api.create(pod('a', '10.0.0.1'));
    const { reflector, restarts } = run(kindOf('Pod'));
    await wait(() => expect(api.openWatches).toBe(1));
    api.faults.goneAsHttpStatus = true;
    api.stallOpenWatches();
    api.update(pod('a', '10.0.0.5'));
    api.compact();
    api.closeWatches();
    await wait(() => expect(ips(reflector)).toEqual(['a=10.0.0.5']));
    expect(restarts).toContain('gone');
    expect(lists()).toBe(2);
  });

  it('starts the list again when its continue token expires', async () => {
    for (let i = 0; i < 6; i++) api.create(pod(`p${i}`, `10.0.0.${i}`));
    let compacted = false;
    api.faults.request = (r) => {
      if (r.query.has('continue') && !compacted) {
        compacted = true;
        api.delete(pod('p0', ''));
        api.compact();
      }
      return undefined;
    };
    const { reflector, relists, logs } = run(kindOf('Pod'), { pageSize: 2 });
    await wait(() => expect(reflector.synced).toBe(true));
    expect(reflector.size).toBe(5);
    expect(relists.length).toBe(1);
    expect(logs.some((l) => l.includes('continue token expired'))).toBe(true);
  });

  it('reconnects a watch that goes silent (no bytes, no error) after the stall limit', async () => {
    api.create(pod('a', '10.0.0.1'));
    api.faults.stallWatches = true;
    const { reflector, restarts } = run(kindOf('Pod'), { stallTimeoutMs: 150 });
    await wait(() => expect(reflector.synced).toBe(true));
    api.update(pod('a', '10.0.0.2')); // lost on the stalled watch
    api.faults.stallWatches = false;
    await wait(() => expect(restarts).toContain('stalled'));
    await wait(() => expect(ips(reflector)).toEqual(['a=10.0.0.2']));
  });

  it('retries a failing LIST with back-off and never gives up', async () => {
    let failures = 3;
    api.faults.request = () => (failures-- > 0 ? 500 : undefined);
    api.create(pod('a', '10.0.0.1'));
    const { reflector, restarts, logs } = run(kindOf('Pod'));
    await wait(() => expect(reflector.synced).toBe(true));
    expect(restarts.filter((r) => r === 'error')).toHaveLength(3);
    expect(logs[0]).toMatch(/reflector Pod: HTTP 500: injected fault 500; retrying in \d+ ms/);
  });

  it('skips a kind whose CRD is not installed (synced, one log line) and picks it up when it appears', async () => {
    api.uninstallCrd('security.istio.io', 'AuthorizationPolicy');
    const { reflector, logs } = run(kindOf('AuthorizationPolicy'));
    await wait(() => expect(reflector.synced).toBe(true));
    await wait(() =>
      expect(api.countRequests((r) => r.path.includes('authorizationpolicies'))).toBeGreaterThan(2),
    );
    expect(logs.filter((l) => l.includes('not installed'))).toHaveLength(1);
    api.installCrd('security.istio.io', 'AuthorizationPolicy');
    api.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny', namespace: 'shop' },
      spec: { action: 'DENY' },
    });
    await wait(() => expect(reflector.size).toBe(1));
  });

  it('ends a 410 storm with the cache equal to the server', async () => {
    for (let i = 0; i < 10; i++) api.create(pod(`p${i}`, `10.0.1.${i}`));
    const { reflector, relists } = run(kindOf('Pod'), { pageSize: 3 });
    for (let round = 0; round < 20; round++) {
      await wait(() => expect(api.openWatches).toBe(1));
      api.stallOpenWatches();
      api.update(pod(`p${round % 10}`, `10.0.2.${round}`));
      if (round % 3 === 0) api.delete(pod(`p${round % 10}`, ''));
      if (round % 3 === 0) api.create(pod(`p${round % 10}`, `10.0.3.${round}`));
      api.compact();
      api.goneOpenWatches();
    }
    const expected = (): string[] =>
      [...Array(10).keys()]
        .map((i) => api.get('v1', 'Pod', 'shop', `p${i}`) as KubeObject)
        .map((p) => `${p.metadata.name}=${(p.status as { podIP: string }).podIP}`)
        .sort();
    await wait(() => expect(ips(reflector)).toEqual(expected()));
    expect(relists.length).toBeGreaterThanOrEqual(20);
  });

  it('watches only the istio ConfigMap of the root namespace', async () => {
    const cm = (name: string, ns: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns },
      data: { mesh: 'rootNamespace: istio-system', other: 'x' },
    });
    api.create(cm('istio', 'istio-system'));
    api.create(cm('other', 'istio-system'));
    api.create(cm('istio', 'shop'));
    const { reflector } = run(kindOf('ConfigMap'));
    await wait(() => expect(reflector.size).toBe(1));
    const doc = [...reflector.values()][0] as KubeDocument;
    expect(doc.metadata).toMatchObject({ name: 'istio', namespace: 'istio-system' });
    expect(doc.data).toEqual({ mesh: 'rootNamespace: istio-system' });
  });
});
