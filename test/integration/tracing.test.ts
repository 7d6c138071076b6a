// Tracing through a real waypoint, spans read from the SDK's in-memory exporter: a SERVER span per
// request and a CLIENT span per attempt (a retry is a second one), Istio's attributes, W3C and B3
// context in and out as the backend sees it, the incoming sampled flag honoured, 0/100% and an
// injected 1% sampler, and tracing off leaving the trace headers alone.
import type { IncomingHttpHeaders } from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TracingSettings } from '../../src/observe/tracing.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { ControllableBackend } from '../helpers/controllable-backend.ts';
import { eventually, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.233.100';
const VIP = '127.0.233.1';
const PODS = [
  { name: 'echo-0', ip: '127.0.233.11', identity: id('shop', 'echo') },
  { name: 'echo-1', ip: '127.0.233.12', identity: id('shop', 'echo') },
];
const RETRYING = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: shop }
spec:
  hosts: [echo.shop.svc.cluster.local]
  http:
    - retries: { attempts: 1, retryOn: 5xx, backoff: 1ms }
      route: [{ destination: { host: echo.shop.svc.cluster.local } }]
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
let pool: ReturnType<TestMesh['httpPool']>;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'echo', vip: VIP, port: 80, targetPort: 8080, pods: PODS }),
      RETRYING,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, PODS);
  waypoint = await mesh.startWaypoint({ ip: WAYPOINT_IP });
  pool = mesh.httpPool(await mesh.hboneClient(id('shop', 'sleep')), waypoint.addresses!.hbone, {
    ip: VIP,
    port: 80,
  });
});
afterAll(() => mesh.close());

/** Turns tracing on with a fresh in-memory exporter (spans exported as each one ends). */
function traceWith(settings: Omit<TracingSettings, 'processor' | 'exporter'>): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  waypoint.tracing.configure({ processor: new SimpleSpanProcessor({ exporter }), ...settings });
  return exporter;
}

let seq = 0;
async function send(
  headers: Record<string, string> = {},
): Promise<{ status: number; upstream: IncomingHttpHeaders[] }> {
  const before = backend.arrivals.length;
  const res = await pool.request({
    method: 'GET',
    path: '/items?x=1',
    headers: { host: 'echo', 'x-request-id': `t-${++seq}`, ...headers },
  });
  await res.body.text();
  return { status: res.statusCode, upstream: backend.arrivals.slice(before).map((a) => a.headers) };
}

const spansOf = (exporter: InMemorySpanExporter, n: number): Promise<ReadableSpan[]> =>
  eventually(() => {
    const spans = exporter.getFinishedSpans();
    return spans.length >= n ? spans : undefined;
  }, `${n} spans`);

const server = (spans: ReadableSpan[]) => spans.find((s) => s.kind === SpanKind.SERVER)!;
const clients = (spans: ReadableSpan[]) => spans.filter((s) => s.kind === SpanKind.CLIENT);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('spans', () => {
  it('a SERVER span and one CLIENT span per attempt, each attempt the parent of what the backend got', async () => {
    const exporter = traceWith({
      samplingPercent: 100,
      customTags: { team: { literal: 'payments' }, user: { header: 'x-user', defaultValue: 'anon' } },
    });
    let first = true;
    backend.script(() => {
      if (!first) return {};
      first = false;
      return { status: 500 };
    });
    const r = await send({ 'x-user': 'alice' });
    expect(r.status).toBe(200);
    expect(r.upstream).toHaveLength(2);
    const spans = await spansOf(exporter, 3);
    const srv = server(spans);
    const attempts = clients(spans);
    expect(attempts).toHaveLength(2);
    for (const c of attempts) {
      expect(c.spanContext().traceId).toBe(srv.spanContext().traceId);
      expect(parentOf(c)).toBe(srv.spanContext().spanId);
    }
    // Each upstream request names its own attempt's span as parent.
    const sentParents = r.upstream.map((h) => String(h.traceparent).split('-')[2]);
    expect(new Set(sentParents)).toEqual(new Set(attempts.map((c) => c.spanContext().spanId)));
    expect(attempts.map((c) => c.attributes['http.status_code']).sort()).toEqual([200, 500]);
    expect(srv.attributes).toMatchObject({
      'http.method': 'GET',
      'http.url': 'http://echo/items?x=1',
      'http.status_code': 200,
      response_flags: '-',
      upstream_cluster: 'inbound-vip|80|http|echo.shop.svc.cluster.local',
      'istio.canonical_service': 'waypoint',
      'istio.namespace': 'shop',
      'istio.mesh_id': 'cluster.local',
      component: 'proxy',
      guid_x_request_id: `t-${seq}`,
      team: 'payments',
      user: 'alice',
    });
    expect(srv.attributes.node_id).toMatch(/^waypoint~/);
    expect(srv.attributes.upstream_address).toMatch(/^127\.0\.233\.1[12]:8080$/);
    expect(attempts[0]!.attributes.upstream_address).toMatch(/^127\.0\.233\.1[12]:8080$/);
    expect(r.upstream[1]!['x-request-id']).toBe(`t-${seq}`);
  });
});

describe('propagation', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const PARENT = '00f067aa0ba902b7';

  it('W3C in: the trace continues, a sampled flag is honoured at 0%, tracestate goes on', async () => {
    backend.always({});
    const exporter = traceWith({ samplingPercent: 0 });
    const r = await send({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=1' });
    const spans = await spansOf(exporter, 2);
    expect(server(spans).spanContext().traceId).toBe(TRACE);
    expect(parentOf(server(spans))).toBe(PARENT);
    const client = clients(spans)[0]!;
    expect(r.upstream[0]!.traceparent).toBe(`00-${TRACE}-${client.spanContext().spanId}-01`);
    expect(r.upstream[0]!.tracestate).toBe('vendor=1');
    expect(r.upstream[0]!['x-b3-traceid']).toBe(TRACE);
  });

  it('an unsampled flag in is honoured at 100%: no span, the context still goes on', async () => {
    backend.always({});
    const exporter = traceWith({ samplingPercent: 100 });
    const r = await send({ traceparent: `00-${TRACE}-${PARENT}-00` });
    expect(r.upstream[0]!.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('B3 multi-header in, W3C and B3 out', async () => {
    backend.always({});
    const exporter = traceWith({ samplingPercent: 0 });
    const r = await send({ 'x-b3-traceid': TRACE, 'x-b3-spanid': PARENT, 'x-b3-sampled': '1' });
    const spans = await spansOf(exporter, 2);
    const client = clients(spans)[0]!.spanContext().spanId;
    expect(parentOf(server(spans))).toBe(PARENT);
    expect(r.upstream[0]).toMatchObject({
      'x-b3-traceid': TRACE,
      'x-b3-spanid': client,
      'x-b3-sampled': '1',
    });
    expect(r.upstream[0]!.traceparent).toBe(`00-${TRACE}-${client}-01`);
  });

  it('B3 single header in, single header out', async () => {
    backend.always({});
    const exporter = traceWith({ samplingPercent: 0 });
    const r = await send({ b3: `${TRACE}-${PARENT}-1` });
    const spans = await spansOf(exporter, 2);
    const client = clients(spans)[0]!.spanContext().spanId;
    expect(r.upstream[0]!.b3).toBe(`${TRACE}-${client}-1`);
  });

  it('no context in: a new trace starts; x-request-id is generated when missing', async () => {
    backend.always({});
    traceWith({ samplingPercent: 100 });
    const res = await pool.request({ method: 'GET', path: '/', headers: { host: 'echo' } });
    await res.body.text();
    const h = backend.arrivals.at(-1)!.headers;
    expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(h['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('sampling', () => {
  it('0% records nothing, 100% records every request', async () => {
    backend.always({});
    const none = traceWith({ samplingPercent: 0 });
    const r = await send();
    expect(r.upstream[0]!.traceparent).toMatch(/-00$/);
    expect(none.getFinishedSpans()).toEqual([]);
    const all = traceWith({ samplingPercent: 100 });
    await send();
    await send();
    expect(clients(await spansOf(all, 4))).toHaveLength(2);
  });

  it('1% (the default) with injected randomness: a draw under 0.01 samples, one over does not', async () => {
    backend.always({});
    let draw = 0.5;
    const exporter = traceWith({ random: () => draw });
    expect((await send()).upstream[0]!.traceparent).toMatch(/-00$/);
    draw = 0.009;
    expect((await send()).upstream[0]!.traceparent).toMatch(/-01$/);
    expect(await spansOf(exporter, 2)).toHaveLength(2);
  });

  it('tracing off: no span, the incoming trace headers go through untouched', async () => {
    backend.always({});
    waypoint.tracing.configure({});
    const r = await send({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    expect(r.upstream[0]!.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(r.upstream[0]!['x-b3-traceid']).toBeUndefined();
  });
});
