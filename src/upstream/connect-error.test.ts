import { describe, expect, it } from 'vitest';
import { TunnelError } from '../hbone/client.ts';
import { REFUSED_STREAM, toProxyError } from './connect-error.ts';

describe('toProxyError', () => {
  it('marks a refused HTTP/2 stream as a connect failure that never reached the app (retry-on refused-stream)', () => {
    const e = toProxyError(
      Object.assign(new Error('stream closed (code 7)'), { code: REFUSED_STREAM }),
      'HTTP/2',
    );
    expect(e).toMatchObject({ reason: 'upstream_connect_failure', retryable: true, refusedStream: true });
  });

  it('keeps a tunnel failure a plain connect failure', () => {
    const e = toProxyError(new TunnelError('connect', 'refused'), 'HBONE');
    expect(e).toMatchObject({ reason: 'upstream_connect_failure', retryable: true, refusedStream: false });
  });

  it('maps a reset to upstream_remote_reset, which is not safe to retry by default', () => {
    const e = toProxyError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'HTTP/1.1');
    expect(e).toMatchObject({ reason: 'upstream_remote_reset', retryable: false });
  });
});
