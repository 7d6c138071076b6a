import { afterAll, describe, expect, it } from 'vitest';
import type { AppProtocol } from './model.ts';
import { compileFiles, docs, namespace, removeTrees, service, waypointGateway } from './test-support.ts';

afterAll(removeTrees);

/** [port name, appProtocol, transport protocol, port number, expected]; undefined = not bound. */
const TABLE: Array<[string | undefined, string | undefined, string, number, AppProtocol | undefined]> = [
  ['http', undefined, 'TCP', 1001, 'http'],
  ['http-web', undefined, 'TCP', 1002, 'http'],
  ['http-alt', undefined, 'TCP', 1003, 'http'],
  ['http2', undefined, 'TCP', 1004, 'http2'],
  ['https', undefined, 'TCP', 1005, 'tls'],
  ['grpc', undefined, 'TCP', 1006, 'grpc'],
  ['grpc-web', undefined, 'TCP', 1007, 'http'],
  ['grpc-web-ui', undefined, 'TCP', 1008, 'http'],
  ['grpc-api', undefined, 'TCP', 1009, 'grpc'],
  ['tcp', undefined, 'TCP', 1010, 'tcp'],
  ['tls', undefined, 'TCP', 1011, 'tls'],
  ['mongo', undefined, 'TCP', 1012, 'tcp'],
  ['mysql', undefined, 'TCP', 1013, 'tcp'],
  ['redis', undefined, 'TCP', 1014, 'tcp'],
  ['web', undefined, 'TCP', 1015, 'unknown'],
  [undefined, undefined, 'TCP', 1016, 'unknown'],
  ['udp-stats', undefined, 'TCP', 1017, undefined],
  ['dns', undefined, 'UDP', 1018, undefined],
  ['web2', 'HTTP', 'TCP', 1019, 'http'],
  ['http-mislabelled', 'tcp', 'TCP', 1020, 'tcp'],
  ['h2c', 'kubernetes.io/h2c', 'TCP', 1021, 'http2'],
  ['ws', 'kubernetes.io/ws', 'TCP', 1022, 'http'],
  ['wss', 'kubernetes.io/wss', 'TCP', 1023, 'tls'],
  ['unknown-app', 'custom.example/proto', 'TCP', 1024, 'unknown'],
  ['smtp', undefined, 'TCP', 25, 'tcp'],
  ['domain', undefined, 'TCP', 53, 'tcp'],
  ['db', undefined, 'TCP', 3306, 'tcp'],
  ['docs', undefined, 'TCP', 27017, 'tcp'],
  ['http-on-25', undefined, 'TCP', 26, 'http'],
  ['web-on-mysql', 'http', 'TCP', 3307, 'http'],
  ['proxy', 'http_proxy', 'TCP', 1025, 'http'],
];

describe('port protocol (Istio ConvertProtocol)', () => {
  it('maps every row of the table', async () => {
    const ports = TABLE.map(([name, appProtocol, protocol, port]) => ({
      ...(name ? { name } : {}),
      port,
      protocol,
      ...(appProtocol ? { appProtocol } : {}),
    }));
    const { snapshot, report } = await compileFiles({
      'svc.yaml': docs(
        waypointGateway(),
        namespace('bank', { 'istio.io/use-waypoint': 'waypoint' }),
        service({ name: 'many', ports }),
      ),
    });
    expect(report.rejected).toEqual([]);
    const got = TABLE.map(([name, appProtocol, protocol, port]) => [
      name,
      appProtocol,
      protocol,
      port,
      snapshot.services.get(`127.0.10.1:${port}`)?.protocol,
    ]);
    expect(got).toEqual(TABLE);
  });

  it('reads the appProtocol case-insensitively', async () => {
    const { snapshot } = await compileFiles({
      'svc.yaml': docs(
        waypointGateway(),
        namespace('bank', { 'istio.io/use-waypoint': 'waypoint' }),
        service({
          name: 'upper',
          ports: [
            { name: 'x', port: 81, appProtocol: 'GRPC-Web' },
            { name: 'y', port: 82, appProtocol: 'HTTP2' },
          ],
        }),
      ),
    });
    expect(snapshot.services.get('127.0.10.1:81')?.protocol).toBe('http');
    expect(snapshot.services.get('127.0.10.1:82')?.protocol).toBe('http2');
  });
});
