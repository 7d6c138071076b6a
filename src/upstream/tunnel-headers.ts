// Headers on the waypoint's outbound CONNECT, as ztunnel sends them (hbone-ambient.md §1.4, §1.7):
// `forwarded` (host= the Service FQDN, which lets the destination ztunnel attribute metrics to the
// Service; for= the original client only on per-connection tunnels, since pooled HTTP tunnels carry
// many clients), `baggage` describing the waypoint as the source workload, and a fresh W3C
// `traceparent` per tunnel.
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Endpoint } from '../../config/model.ts';
import type { HostPort } from '../hbone/authority.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { Binding } from '../pipeline/context.ts';

export interface WaypointWorkload {
  readonly namespace: string;
  readonly name: string;
  readonly cluster: string;
}

export function baggageOf(self: WaypointWorkload): string {
  return `k8s.cluster.name=${self.cluster},k8s.namespace.name=${self.namespace},k8s.deployment.name=${self.name},service.name=${self.name},service.version=latest`;
}

function traceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;
}

/** The Service FQDN a tunnel's `forwarded: host=` names; pooled tunnels are keyed by it too. */
export function serviceHostOf(binding: Binding): string | undefined {
  return binding.kind === 'service' ? binding.service.hostname : undefined;
}

/**
 * The key of a pool of tunnels (HTTP/1 connections, h2c sessions): one pool per endpoint, its
 * identity and transport, and the Service the tunnels name. Formatted once per endpoint object.
 */
export function poolKey(endpoint: Endpoint, serviceHost: string | undefined): string {
  const cached = poolKeys.get(endpoint);
  if (cached && cached.serviceHost === serviceHost) return cached.key;
  const key = `${endpoint.ip}|${endpoint.port}|${endpoint.identity}|${endpoint.transport ?? 'hbone'}|${serviceHost}`;
  poolKeys.set(endpoint, { serviceHost, key });
  return key;
}
const poolKeys = new WeakMap<Endpoint, { readonly serviceHost: string | undefined; readonly key: string }>();

export function tunnelHeaders(
  serviceHost: string | undefined,
  baggage: string,
  client?: HostPort,
): OutgoingHttpHeaders {
  const parts: string[] = [];
  if (client) parts.push(`for="${formatAuthority(client.ip, client.port)}"`);
  if (serviceHost) parts.push(`host=${serviceHost}`);
  const headers: OutgoingHttpHeaders = { baggage, traceparent: traceparent() };
  if (parts.length > 0) headers.forwarded = parts.join(';');
  return headers;
}
