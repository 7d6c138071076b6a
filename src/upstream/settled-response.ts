// Several layers hold something until a response is over (an endpoint's busy count, a breaker slot,
// a retry's abort link). Instead of each rebuilding the response object around the one below, they
// share one wrapper that runs every release once the body ended, failed, or was discarded.
import type { IncomingHttpHeaders } from 'node:http';
import type { ResponseSink, UpstreamResponse } from './types.ts';

/** `res` with `release` run once, when its body is over or it is discarded. */
export function onSettled(res: UpstreamResponse, release: () => void): UpstreamResponse {
  if (res instanceof SettledResponse) {
    res.add(release);
    return res;
  }
  return new SettledResponse(res, res.headers, release);
}

/** `res` with other headers (e.g. a generated hash cookie added), the same body. */
export function withHeaders(res: UpstreamResponse, headers: IncomingHttpHeaders): UpstreamResponse {
  return new SettledResponse(res, headers, undefined);
}

class SettledResponse implements UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly upstreamHost: string;
  readonly endStream: boolean | undefined;
  readonly #inner: UpstreamResponse;
  #releases: Array<() => void> | undefined;
  #settled = false;

  constructor(inner: UpstreamResponse, headers: IncomingHttpHeaders, release: (() => void) | undefined) {
    this.status = inner.status;
    this.headers = headers;
    this.upstreamHost = inner.upstreamHost;
    this.endStream = inner.endStream;
    this.#inner = inner;
    this.#releases = release ? [release] : undefined;
  }

  add(release: () => void): void {
    if (this.#settled) release();
    else if (this.#releases) this.#releases.push(release);
    else this.#releases = [release];
  }

  stream(sink: ResponseSink): Promise<void> {
    return this.#inner.stream(sink).finally(() => this.#settle());
  }

  discard(): void {
    this.#settle();
    this.#inner.discard();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    const releases = this.#releases;
    this.#releases = undefined;
    if (releases) for (const release of releases) release();
  }
}
