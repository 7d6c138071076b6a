// What the fuzzer aims at, for the fuzz test and bench/fuzz.ts alike: one Service with an
// HTTP/1.1 backend that tolerates anything, and a waypoint run as a child process (a crash is an
// exit), each on the caller's own loopback addresses.
import http from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import { id, serviceYaml, TestMesh, type WaypointProcess, waypointYaml } from './mesh.ts';

export interface FuzzAddresses {
  readonly waypointIp: string;
  readonly web: { readonly ip: string; readonly port: number };
  readonly podIp: string;
}

export interface FuzzTarget {
  readonly waypoint: WaypointProcess;
  /** A fresh tunnel to the Service through the waypoint. */
  open(): Promise<ClientHttp2Stream>;
}

export async function startFuzzTarget(mesh: TestMesh, at: FuzzAddresses): Promise<FuzzTarget> {
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'web',
        vip: at.web.ip,
        port: at.web.port,
        pods: [{ name: 'web-a', ip: at.podIp }],
      }),
    ].join('---\n'),
  );
  const backend = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
    req.on('error', () => {});
  });
  backend.on('clientError', (_e, socket) => socket.destroy());
  await mesh.pod(at.podIp, at.web.port, backend, id('shop', 'web'));
  const waypoint = await mesh.spawnWaypoint(['--access-log', 'off'], { hboneIp: at.waypointIp });
  const client = await mesh.hboneClient(id('shop', 'curl'));
  return { waypoint, open: () => TestMesh.tunnel(client, waypoint.hbone, at.web) };
}
