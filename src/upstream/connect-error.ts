// Maps failures below HTTP (the HBONE tunnel, the inner connection) onto reason codes with Envoy's
// meaning: could not connect (UF), peer reset (UR), connection closed (UC), unparsable reply (UPE).
import { TunnelError } from '../hbone/client.ts';
import { ProxyError } from '../pipeline/proxy-error.ts';

/** The code http2-upstream.ts gives a stream the upstream refused (RST_STREAM REFUSED_STREAM). */
export const REFUSED_STREAM = 'REFUSED_STREAM';

export function toProxyError(err: unknown, where: string): ProxyError {
  if (err instanceof ProxyError) return err;
  if (err instanceof TunnelError) {
    return new ProxyError('upstream_connect_failure', `${where}: ${err.message}`, {
      retryable: true,
      cause: err,
    });
  }
  const e = err as NodeJS.ErrnoException & { code?: string };
  const code = e?.code ?? '';
  const message = `${where}: ${e?.message ?? String(err)}`;
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'ERR_HTTP2_PROTOCOL_ERROR') {
    return new ProxyError('upstream_protocol_error', message, { cause: err });
  }
  if (code === REFUSED_STREAM) {
    return new ProxyError('upstream_connect_failure', message, {
      retryable: true,
      refusedStream: true,
      cause: err,
    });
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNREFUSED') {
    return new ProxyError('upstream_connect_failure', message, { retryable: true, cause: err });
  }
  if (code === 'ECONNRESET' || code === 'ERR_HTTP2_STREAM_ERROR' || code === 'UND_ERR_ABORTED') {
    return new ProxyError('upstream_remote_reset', message, { cause: err });
  }
  if (code === 'ERR_HTTP2_INVALID_HEADER_VALUE' || code === 'UND_ERR_INVALID_ARG') {
    return new ProxyError('upstream_protocol_error', message, { cause: err });
  }
  return new ProxyError('upstream_connection_termination', message, { cause: err });
}
