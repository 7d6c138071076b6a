// The config stream's wire types (config-stream.proto), loaded at run time with proto-loader, and
// the TypeScript shapes of its messages as proto-loader decodes them.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_FILE = fileURLToPath(new URL('./config-stream.proto', import.meta.url));

export interface Hello {
  readonly gateway: string;
  readonly node: string;
}

export interface Ack {
  readonly version: string;
  readonly rejected: readonly string[];
}

export interface WaypointMessage {
  readonly hello?: Hello | null;
  readonly ack?: Ack | null;
  readonly message?: 'hello' | 'ack';
}

export interface WireDocument {
  readonly key: string;
  readonly resourceVersion: string;
  readonly json: Buffer;
}

export interface Push {
  readonly version: string;
  readonly full: boolean;
  readonly upserts: readonly WireDocument[];
  readonly removes: readonly string[];
}

const packageDefinition = protoLoader.loadSync(PROTO_FILE, {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

interface ServiceClientCtor {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): grpc.Client;
  service: grpc.ServiceDefinition;
}

const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  nodewaypoint: { controller: { v1: { ConfigStream: ServiceClientCtor } } };
};

/** The service as the server registers it and the client calls it. */
export const ConfigStreamClient = loaded.nodewaypoint.controller.v1.ConfigStream;
export const CONFIG_STREAM_SERVICE = ConfigStreamClient.service;
/** The bidi method's path, for Client.makeBidiStreamRequest. */
export const SUBSCRIBE_PATH = '/nodewaypoint.controller.v1.ConfigStream/Subscribe';
