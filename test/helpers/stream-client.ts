// A bare config stream client for controller tests: it speaks the protocol by hand, so a test can
// ACK, NACK, stay silent or stop reading exactly when it wants to.
import type * as grpc from '@grpc/grpc-js';
import {
  CONFIG_STREAM_SERVICE,
  ConfigStreamClient,
  type Push,
  SUBSCRIBE_PATH,
  type WaypointMessage,
} from '../../src/controller/protocol.ts';
import { channelCredentials } from '../../src/controller/tls.ts';
import type { Credentials } from '../../src/identity/credentials.ts';

export interface RawStream {
  /** The next push (already received or still to come). */
  next(): Promise<Push>;
  ack(version: string, rejected?: string[]): void;
  /** Resolves with the status the stream ended with. */
  readonly ended: Promise<grpc.StatusObject>;
  readonly call: grpc.ClientDuplexStream<WaypointMessage, Push>;
  close(): void;
}

export function openRawStream(opts: {
  address: string;
  credentials: Credentials;
  controllerIdentity: string;
  gateway: string;
  /** false: open the stream and say nothing. */
  hello?: boolean;
}): RawStream {
  const client = new ConfigStreamClient(
    opts.address,
    channelCredentials(opts.credentials, opts.controllerIdentity, () => {}),
    { 'grpc.ssl_target_name_override': 'node-waypoint-controller' },
  );
  const method = CONFIG_STREAM_SERVICE.Subscribe!;
  const call = client.makeBidiStreamRequest(
    SUBSCRIBE_PATH,
    method.requestSerialize,
    method.responseDeserialize,
  ) as grpc.ClientDuplexStream<WaypointMessage, Push>;
  const received: Push[] = [];
  const waiting: Array<(p: Push) => void> = [];
  call.on('data', (p: Push) => {
    const w = waiting.shift();
    if (w) w(p);
    else received.push(p);
  });
  const ended = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', resolve);
    call.on('error', () => {});
  });
  if (opts.hello !== false) call.write({ hello: { gateway: opts.gateway, node: 'test' } });
  return {
    next: () => {
      const p = received.shift();
      return p ? Promise.resolve(p) : new Promise((r) => waiting.push(r));
    },
    ack: (version, rejected = []) => call.write({ ack: { version, rejected } }),
    ended,
    call,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

export function docsOf(push: Push): Array<{ key: string; doc: Record<string, unknown> }> {
  return push.upserts.map((u) => ({
    key: u.key,
    doc: JSON.parse(u.json.toString()) as Record<string, unknown>,
  }));
}
