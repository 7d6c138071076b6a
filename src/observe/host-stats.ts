// Per-endpoint request and connection counts for the admin's /clusters (Envoy's rq_total, rq_error,
// cx_total). Keyed by `ip:port`; hosts that leave the configuration are dropped on the next apply.
export interface HostCounts {
  rqTotal: number;
  rqError: number;
  cxTotal: number;
}

export class HostStats {
  readonly #hosts = new Map<string, HostCounts>();

  #get(host: string): HostCounts {
    let c = this.#hosts.get(host);
    if (!c) {
      c = { rqTotal: 0, rqError: 0, cxTotal: 0 };
      this.#hosts.set(host, c);
    }
    return c;
  }

  /** One request answered by host (a 5xx, or no status at all, is an error as Envoy counts it). */
  request(host: string | undefined, status: number): void {
    if (!host) return;
    const c = this.#get(host);
    c.rqTotal++;
    if (status >= 500 || status === 0) c.rqError++;
  }

  connection(host: string): void {
    this.#get(host).cxTotal++;
  }

  counts(host: string): Readonly<HostCounts> {
    return this.#hosts.get(host) ?? { rqTotal: 0, rqError: 0, cxTotal: 0 };
  }

  /** Keeps only the hosts still configured. */
  retain(hosts: ReadonlySet<string>): void {
    for (const h of this.#hosts.keys()) if (!hosts.has(h)) this.#hosts.delete(h);
  }
}
