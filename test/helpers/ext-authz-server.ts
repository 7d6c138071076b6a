// A real gRPC ext_authz server (envoy.service.auth.v3.Authorization/Check on the protos in
// filters/authz/proto, loaded as test/integration/ext-authz.test.ts loads them) whose decision a
// test supplies; it records every CheckRequest it is asked.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { EXTERNAL_AUTH_PROTO, PROTO_OPTIONS } from '../../filters/authz/ext-authz.ts';

interface SocketAddr {
  readonly socketAddress: { readonly address: string; readonly portValue: number };
}

/** The CheckRequest fields tests read (proto-loader's camelCase form; `request` is unset on TCP). */
export interface SeenCheck {
  readonly principal: string;
  readonly source: string;
  readonly destination: string;
  /** Whether the request carried `attributes.request.http` (HTTP checks do, TCP checks do not). */
  readonly http: boolean;
}

interface CheckRequest {
  readonly attributes: {
    readonly source: { readonly principal: string; readonly address: SocketAddr };
    readonly destination: { readonly address: SocketAddr };
    readonly request?: { readonly http?: { readonly method: string } | null } | null;
  };
}

const addr = (a: SocketAddr): string => `${a.socketAddress.address}:${a.socketAddress.portValue}`;

export async function startGrpcAuthz(
  ip: string,
  allow: (check: SeenCheck) => boolean,
): Promise<{ server: grpc.Server; port: number; seen: SeenCheck[] }> {
  const def = loader.loadSync(EXTERNAL_AUTH_PROTO, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: { service: grpc.ServiceDefinition } } } } };
  };
  const seen: SeenCheck[] = [];
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check(call: grpc.ServerUnaryCall<CheckRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const a = call.request.attributes;
      const check: SeenCheck = {
        principal: a.source.principal,
        source: addr(a.source.address),
        destination: addr(a.destination.address),
        http: Boolean(a.request?.http?.method),
      };
      seen.push(check);
      cb(
        null,
        allow(check)
          ? { status: { code: 0 }, okResponse: {} }
          : { status: { code: 7, message: 'no' }, deniedResponse: { status: { code: 403 } } },
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${ip}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port, seen };
}
