// Istio's standard metrics as a real waypoint reports them after real traffic: every label Kiali's
// graph groups by (kiali business/graph/telemetry/istio) present and non-empty for known pods, with
// the values Istio's waypoint test data expects (tests/integration/ambient: source_workload
// "captured-v1" from the Deployment, app/version labels); the source from the CONNECT's baggage, from
// the pod at the tunnel's source IP, or unknown; TCP series and a TCP access-log line; and the
// Grafana dashboard under deploy/dashboards, every metric of which is in the live scrape.
// Addresses: waypoint 127.0.198.2; VIPs 127.0.198.10-11; pods 127.0.198.20-21; client pod 127.0.198.50.
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatAuthority, type HostPort } from '../../src/hbone/authority.ts';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { eventually, getText, id, ROOT, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const REVIEWS: HostPort = { ip: '127.0.198.10', port: 9080 };
const DB: HostPort = { ip: '127.0.198.11', port: 5432 };
const CLIENT_POD_IP = '127.0.198.50';

/** The labels Kiali's graph, security and throughput appenders group by. */
const KIALI_LABELS = [
  'reporter',
  'source_cluster',
  'source_workload_namespace',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_principal',
  'destination_cluster',
  'destination_service_namespace',
  'destination_service',
  'destination_service_name',
  'destination_workload_namespace',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_principal',
  'connection_security_policy',
  'request_protocol',
  'response_flags',
];
const HTTP_ONLY = ['response_code', 'grpc_response_status'];
const ISTIO_LABELS = [
  ...KIALI_LABELS,
  ...HTTP_ONLY,
  'source_app',
  'source_version',
  'destination_app',
  'destination_version',
];

const pod = (o: {
  name: string;
  ip: string;
  sa: string;
  labels: Record<string, string>;
  owner?: { kind: string; name: string };
}): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${o.name}
  namespace: shop
${o.owner ? `  generateName: ${o.owner.name}-\n  ownerReferences:\n    - {apiVersion: apps/v1, kind: ${o.owner.kind}, name: ${o.owner.name}, uid: u1, controller: true}\n` : ''}  labels:
${Object.entries(o.labels)
  .map(([k, v]) => `    ${k}: "${v}"`)
  .join('\n')}
spec:
  serviceAccountName: ${o.sa}
status:
  phase: Running
  podIP: ${o.ip}
`;

const service = (name: string, vip: HostPort, portName: string, app: string): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: shop
spec:
  clusterIP: ${vip.ip}
  selector:
    app: ${app}
  ports:
    - {name: ${portName}, port: ${vip.port}}
`;

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseScrape(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

let mesh: TestMesh;
let waypoint: Waypoint;
const accessLog: string[] = [];

/** HTTP through the waypoint on tunnels that carry `headers` on their CONNECT (baggage, forwarded). */
function pool(client: HboneClient, to: HostPort, headers: Record<string, string>): Pool {
  const wp = waypoint.addresses!.hbone;
  const p = new Pool(`http://${formatAuthority(to.ip, to.port)}`, {
    connect: (_o, cb) => {
      client
        .open(
          { ip: wp.ip, hbonePort: wp.port, identity: id('shop', 'waypoint') },
          formatAuthority(to.ip, to.port),
          headers,
        )
        .then(
          (s) => cb(null, s as unknown as Duplex as never),
          (e: Error) => cb(e, null),
        );
    },
  });
  mesh.onClose(() => p.destroy());
  return p;
}

/** `ping` through a TCP tunnel to an echo server; resolves with what came back. */
async function ping(client: HboneClient, to: HostPort, headers: Record<string, string>): Promise<string> {
  const wp = waypoint.addresses!.hbone;
  const stream = await client.open(
    { ip: wp.ip, hbonePort: wp.port, identity: id('shop', 'waypoint') },
    formatAuthority(to.ip, to.port),
    headers,
  );
  return new Promise((resolve) => {
    let got = '';
    stream.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') stream.end();
    });
    stream.on('error', () => resolve(got));
    stream.on('close', () => resolve(got));
    stream.write('ping');
  });
}

async function get(p: Pool, path: string): Promise<number> {
  const res = await p.request({ method: 'GET', path });
  await res.body.text();
  return res.statusCode;
}

async function scrape(): Promise<Series[]> {
  return parseScrape((await getText(waypoint.addresses!.metrics, '/stats/prometheus')).body);
}

const requestsFrom = (all: Series[], workload: string) =>
  all.filter((s) => s.name === 'istio_requests_total' && s.labels.source_workload === workload);

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      service('reviews', REVIEWS, 'http', 'reviews'),
      service('db', DB, 'tcp-postgres', 'db'),
      pod({
        name: 'reviews-v1-7d9f8c-x2x2x',
        ip: '127.0.198.20',
        sa: 'reviews',
        labels: { app: 'reviews', version: 'v1', 'pod-template-hash': '7d9f8c' },
        owner: { kind: 'ReplicaSet', name: 'reviews-v1-7d9f8c' },
      }),
      pod({
        name: 'db-0',
        ip: '127.0.198.21',
        sa: 'db',
        labels: {
          app: 'db',
          'service.istio.io/canonical-name': 'database',
          'app.kubernetes.io/version': '15',
        },
        owner: { kind: 'StatefulSet', name: 'db' },
      }),
      pod({
        name: 'productpage-v1-5b6d-abcde',
        ip: CLIENT_POD_IP,
        sa: 'productpage',
        labels: { app: 'productpage', version: 'v1', 'pod-template-hash': '5b6d' },
        owner: { kind: 'ReplicaSet', name: 'productpage-v1-5b6d' },
      }),
    ].join('---\n'),
  );
  await mesh.pod('127.0.198.20', 9080, TestMesh.echoServer('reviews'), id('shop', 'reviews'));
  const echo = (await import('node:net')).createServer((s) => s.pipe(s));
  await mesh.pod('127.0.198.21', 5432, echo, id('shop', 'db'));
  const out = new PassThrough();
  out.on('data', (d: Buffer) => accessLog.push(...d.toString().split('\n').filter(Boolean)));
  waypoint = await mesh.startWaypoint({
    ip: '127.0.198.2',
    clusterId: 'west',
    accessLog: 'all',
    accessLogStream: out,
    defaultMetrics: true,
  });

  // The productpage pod: no baggage, its IP in the tunnel's `forwarded`: found by IP.
  const productpage = await mesh.hboneClient(id('shop', 'productpage'));
  const byIp = pool(productpage, REVIEWS, { forwarded: `for="${CLIENT_POD_IP}:41000"` });
  for (let i = 0; i < 3; i++) expect(await get(byIp, `/p/${i}?q=${i}`)).toBe(200);
  // ztunnel's baggage names the source.
  const sleep = await mesh.hboneClient(id('shop', 'sleep'));
  const baggage =
    'k8s.cluster.name=east,k8s.namespace.name=shop,k8s.deployment.name=sleep,service.name=sleep,service.version=v2';
  expect(await get(pool(sleep, REVIEWS, { baggage, forwarded: 'for="127.0.198.99:1"' }), '/b')).toBe(200);
  // Nothing known about this one but its certificate.
  const ghost = await mesh.hboneClient(id('shop', 'ghost'));
  expect(await get(pool(ghost, REVIEWS, { forwarded: 'for="127.0.198.98:1"' }), '/g')).toBe(200);
  // TCP: ping through the database Service, from the productpage pod.
  expect(await ping(productpage, DB, { forwarded: `for="${CLIENT_POD_IP}:41001"` })).toBe('ping');
});
afterAll(() => mesh?.close());

describe('istio_* series as Kiali reads them', () => {
  it('has every standard label, non-empty, with the values Istio derives, for a source found by its pod IP', async () => {
    const all = await eventually(async () => {
      const s = await scrape();
      return requestsFrom(s, 'productpage-v1')[0]?.value === 3 && s;
    }, 'three requests from productpage-v1');
    const [series] = requestsFrom(all, 'productpage-v1');
    for (const label of ISTIO_LABELS) expect(Object.keys(series!.labels)).toContain(label);
    for (const label of KIALI_LABELS) expect(series!.labels[label], label).not.toBe('');
    expect(series!.labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'productpage-v1',
      source_workload_namespace: 'shop',
      source_principal: id('shop', 'productpage'),
      source_app: 'productpage',
      source_version: 'v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_cluster: 'west',
      destination_workload: 'reviews-v1',
      destination_workload_namespace: 'shop',
      destination_principal: id('shop', 'reviews'),
      destination_app: 'reviews',
      destination_version: 'v1',
      destination_service: 'reviews.shop.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'shop',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v1',
      destination_cluster: 'west',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    // No path, query or other per-request value became a label.
    expect(JSON.stringify(all.filter((s) => s.name.startsWith('istio_')))).not.toMatch(/\/p\/|q=/);
  });

  it("takes the source from ztunnel's baggage when the CONNECT carries it", async () => {
    const [series] = requestsFrom(await scrape(), 'sleep');
    expect(series?.labels).toMatchObject({
      source_workload_namespace: 'shop',
      source_principal: id('shop', 'sleep'),
      source_canonical_service: 'sleep',
      source_canonical_revision: 'v2',
      source_cluster: 'east',
      destination_workload: 'reviews-v1',
    });
  });

  it('reports an unknown source as unknown, with the principal and namespace its certificate proves', async () => {
    const [series] = requestsFrom(await scrape(), 'unknown');
    expect(series?.labels).toMatchObject({
      source_principal: id('shop', 'ghost'),
      source_workload_namespace: 'shop',
      source_canonical_service: 'unknown',
      source_cluster: 'west',
    });
  });

  it("uses Envoy's histogram buckets and records request and response sizes", async () => {
    const all = await scrape();
    const buckets = all.filter(
      (s) =>
        s.name === 'istio_request_duration_milliseconds_bucket' &&
        s.labels.source_workload === 'productpage-v1',
    );
    expect(buckets.map((s) => s.labels.le).slice(0, 3)).toEqual(['0.5', '1', '5']);
    expect(buckets.at(-2)?.labels.le).toBe('3600000');
    const responseBytes = all.find(
      (s) => s.name === 'istio_response_bytes_sum' && s.labels.source_workload === 'productpage-v1',
    );
    expect(responseBytes?.value).toBeGreaterThan(0);
    const requestCount = all.find(
      (s) => s.name === 'istio_request_bytes_count' && s.labels.source_workload === 'productpage-v1',
    );
    expect(requestCount?.value).toBe(3);
  });

  it('labels TCP series with the destination pod (canonical-name and app.kubernetes.io/version labels)', async () => {
    const all = await eventually(async () => {
      const s = await scrape();
      return s.some((x) => x.name === 'istio_tcp_connections_closed_total' && x.value === 1) && s;
    }, 'the TCP connection closed');
    const opened = all.find((s) => s.name === 'istio_tcp_connections_opened_total');
    expect(opened?.labels).toMatchObject({
      request_protocol: 'tcp',
      source_workload: 'productpage-v1',
      destination_workload: 'db',
      destination_canonical_service: 'database',
      destination_canonical_revision: '15',
      destination_principal: id('shop', 'db'),
      destination_service_name: 'db',
    });
    for (const label of KIALI_LABELS) expect(opened!.labels[label], label).not.toBe('');
    const sent = all.find((s) => s.name === 'istio_tcp_sent_bytes_total');
    const received = all.find((s) => s.name === 'istio_tcp_received_bytes_total');
    expect([sent?.value, received?.value]).toEqual([4, 4]);
  });

  it('logs the TCP connection as Envoy does: "- - -", code 0, bytes, upstream host and cluster', async () => {
    const line = await eventually(
      () => accessLog.find((l) => l.includes('"- - -"')),
      'a TCP access-log line',
    );
    expect(line).toMatch(
      /^\[[^\]]+\] "- - -" 0 - - - "-" 4 4 \d+ - "-" "-" "-" "-" "127\.0\.198\.21:5432" inbound-vip\|5432\|tcp\|db\.shop\.svc\.cluster\.local - 127\.0\.198\.11:5432 127\.0\.198\.50:41001 - -$/,
    );
  });
});

describe('the Grafana dashboard (deploy/dashboards/node-waypoint.json)', () => {
  it('uses only metrics a live waypoint exports', async () => {
    const dashboard = JSON.parse(await readFile(`${ROOT}deploy/dashboards/node-waypoint.json`, 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const text = (await getText(waypoint.addresses!.metrics, '/stats/prometheus')).body;
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const used = new Set<string>();
    for (const panel of dashboard.panels)
      for (const t of panel.targets)
        for (const m of t.expr.matchAll(/\b((?:istio|waypoint|process|nodejs)_[a-z0-9_]+)\b/g))
          used.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    expect(dashboard.panels.map((p) => p.title).join(' ')).toMatch(
      /Errors by reason.*duration.*ejections.*Rate limits.*Config reloads/s,
    );
  });
});
