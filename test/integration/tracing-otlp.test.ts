// End to end: spans leave the waypoint over OTLP/HTTP (protobuf) to a receiver started here, which
// decodes them. The exporter comes from the mesh config's opentelemetry provider that a Telemetry
// in the root namespace selects; changing the Telemetry takes effect without a restart.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { ControllableBackend } from '../helpers/controllable-backend.ts';
import { eventually, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.233.150';
const RECEIVER_IP = '127.0.233.151';
const VIP = '127.0.233.2';
const PODS = [{ name: 'echo-0', ip: '127.0.233.21', identity: id('shop', 'echo') }];

// The part of opentelemetry/proto/collector/trace/v1 this test reads.
const root = protobuf.parse(
  `syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { repeated ScopeSpans scope_spans = 2; }
message ScopeSpans { repeated Span spans = 2; }
message Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6; repeated KeyValue attributes = 9; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
`,
  { keepCase: true },
).root;
const Request = root.lookupType('ExportTraceServiceRequest');

interface Received {
  readonly kind: number;
  readonly traceId: string;
  readonly attributes: Record<string, unknown>;
}
const received: Received[] = [];
const tokens: (string | undefined)[] = [];

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let mesh: TestMesh;
let waypoint: Waypoint;
let pool: ReturnType<TestMesh['httpPool']>;
const receiver = createServer(async (req, res) => {
  tokens.push(req.headers['x-token'] as string | undefined);
  const decoded = Request.toObject(Request.decode(await bodyOf(req)), { longs: Number, bytes: String }) as {
    resource_spans?: {
      scope_spans?: {
        spans?: {
          trace_id: string;
          kind: number;
          attributes?: { key: string; value: Record<string, unknown> }[];
        }[];
      }[];
    }[];
  };
  for (const rs of decoded.resource_spans ?? [])
    for (const ss of rs.scope_spans ?? [])
      for (const s of ss.spans ?? [])
        received.push({
          kind: s.kind,
          traceId: Buffer.from(s.trace_id, 'base64').toString('hex'),
          attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]])),
        });
  res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
});

const telemetry = (percent: number) => `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing:
    - providers: [{ name: otel }]
      randomSamplingPercentage: ${percent}
      customTags: { cluster: { literal: { value: test } } }
`;
const writeConfig = (percent: number) =>
  mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'echo', vip: VIP, port: 80, targetPort: 8080, pods: PODS }),
      telemetry(percent),
    ].join('---\n'),
  );

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, RECEIVER_IP, r));
  const port = (receiver.address() as AddressInfo).port;
  mesh = await TestMesh.create();
  await writeConfig(100);
  await ControllableBackend.start(mesh, 8080, PODS);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    tracingProviders: [
      {
        name: 'otel',
        service: RECEIVER_IP,
        port,
        maxTagLength: 256,
        http: { path: '/v1/traces', timeoutMs: 5000, headers: { 'x-token': 'abc' } },
      },
    ],
  });
  pool = mesh.httpPool(await mesh.hboneClient(id('shop', 'sleep')), waypoint.addresses!.hbone, {
    ip: VIP,
    port: 80,
  });
});
afterAll(async () => {
  await mesh.close();
  receiver.close();
});

async function get(): Promise<void> {
  const res = await pool.request({ method: 'GET', path: '/', headers: { host: 'echo' } });
  await res.body.text();
}

it('exports SERVER and CLIENT spans over OTLP/HTTP to the Telemetry-selected provider, and follows a Telemetry change', async () => {
  await get();
  await eventually(async () => {
    await waypoint.tracing.flush();
    return received.length >= 2;
  }, 'two spans at the receiver');
  expect(received.map((s) => s.kind).sort()).toEqual([2, 3]); // SPAN_KIND_SERVER, SPAN_KIND_CLIENT
  expect(new Set(received.map((s) => s.traceId)).size).toBe(1);
  const server = received.find((s) => s.kind === 2)!;
  expect(server.attributes).toMatchObject({
    'http.status_code': 200,
    component: 'proxy',
    cluster: 'test',
    'istio.namespace': 'shop',
  });
  expect(tokens.every((t) => t === 'abc')).toBe(true);

  // The same Telemetry at 0%: applied from the reloaded configuration, no restart.
  await writeConfig(0);
  await eventually(
    () =>
      (waypoint.snapshot?.filters.telemetry as { samplingPercent?: number } | undefined)?.samplingPercent ===
      0,
    'the Telemetry change applied',
  );
  const before = received.length;
  await get();
  await waypoint.tracing.flush();
  expect(received.length).toBe(before);
});
