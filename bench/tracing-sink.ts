// `--tracing PERCENT`: the waypoint exports spans over OTLP/HTTP to a sink that reads and drops
// them, selected by a mesh-default Telemetry at that sampling percentage.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const SINK_IP = '127.0.234.1';

export interface TracingSink {
  /** Files for the waypoint's config directory (the Telemetry). */
  readonly extra: Record<string, string>;
  /** The mesh config YAML naming the sink as opentelemetry provider. */
  readonly meshConfig: string;
  readonly received: () => number;
  close(): void;
}

export async function startTracingSink(percent: number): Promise<TracingSink> {
  let received = 0;
  const server: Server = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      received++;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, SINK_IP, r));
  const port = (server.address() as AddressInfo).port;
  return {
    extra: {
      'telemetry.yaml': `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: bench-otel }], randomSamplingPercentage: ${percent} }]
`,
    },
    meshConfig: `extensionProviders:
- name: bench-otel
  opentelemetry: { service: ${SINK_IP}, port: ${port}, http: { path: /v1/traces } }
`,
    received: () => received,
    close: () => server.close(),
  };
}
