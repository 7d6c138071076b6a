// Mutual TLS for the config stream, from the workload credentials both sides already have: the
// server follows certificate rotations through a grpc-js certificate provider; the client pins the
// controller's exact SPIFFE identity instead of checking a host name (SPIFFE certificates have none).
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Credentials } from '../identity/credentials.ts';
import { identityOfSubjectAltName } from '../identity/spiffe.ts';

type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;

/**
 * Server credentials that require a client certificate from the trust bundle and follow rotations.
 * One provider serves both roles, so which argument grpc-js reads as which does not matter. The
 * first update is delivered on the next microtask: grpc-js registers the server's own watcher only
 * after adding the provider's listeners, so a synchronous first update would never reach it.
 */
export function serverCredentials(credentials: Credentials): grpc.ServerCredentials {
  const caListeners = new Set<CaListener>();
  const idListeners = new Set<IdentityListener>();
  const sendCa = (l: CaListener) => l({ caCertificate: Buffer.from(credentials.tlsOptions().ca) });
  const sendId = (l: IdentityListener) => {
    const t = credentials.tlsOptions();
    l({ certificate: Buffer.from(t.cert), privateKey: Buffer.from(t.key) });
  };
  credentials.onChange(() => {
    for (const l of caListeners) sendCa(l);
    for (const l of idListeners) sendId(l);
  });
  const provider = {
    addCaCertificateListener: (l: CaListener) => {
      caListeners.add(l);
      queueMicrotask(() => caListeners.has(l) && sendCa(l));
    },
    removeCaCertificateListener: (l: CaListener) => caListeners.delete(l),
    addIdentityCertificateListener: (l: IdentityListener) => {
      idListeners.add(l);
      queueMicrotask(() => idListeners.has(l) && sendId(l));
    },
    removeIdentityCertificateListener: (l: IdentityListener) => idListeners.delete(l),
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/** The SPIFFE identity a peer certificate carries (its first Istio-shaped URI SAN). */
export function peerIdentity(cert: PeerCertificate | undefined) {
  return identityOfSubjectAltName(cert?.subjectaltname);
}

/**
 * Client credentials for one connection attempt: the current certificate, and a check that the
 * controller presents exactly `expected`. `onMismatch` hears what it presented instead.
 */
export function channelCredentials(
  credentials: Credentials,
  expected: string,
  onMismatch: (problem: string) => void,
): grpc.ChannelCredentials {
  const t = credentials.tlsOptions();
  return grpc.credentials.createSsl(Buffer.from(t.ca), Buffer.from(t.key), Buffer.from(t.cert), {
    checkServerIdentity: (_host, cert) => {
      const got = peerIdentity(cert);
      if (got?.uri === expected) return undefined;
      const problem = `the controller presented ${got?.uri ?? 'no SPIFFE identity'}, expected ${expected}`;
      onMismatch(problem);
      return new Error(problem);
    },
  });
}

/** Channel options: keepalive so a vanished controller is noticed; SNI never set to an IP. */
export function channelOptions(host: string): grpc.ChannelOptions {
  return {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    // RFC 6066 forbids an IP address as SNI; the name is only for SNI, identity is checked above.
    ...(isIP(host) ? { 'grpc.ssl_target_name_override': 'node-waypoint-controller' } : {}),
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
  };
}
