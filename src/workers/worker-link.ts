// The worker's side of the IPC channel to the primary: it answers the primary's scrapes and
// readiness checks for its waypoint, reports where it listens once started, takes its local
// rate-limit decisions from the primary's shared buckets, and drains when the primary goes away.
import type { Registry } from 'prom-client';
import client from 'prom-client';
import type { Waypoint } from '../waypoint.ts';
import { Ipc, type IpcMessage } from './ipc.ts';
import type { BucketAnswer, BucketRequest } from './shared-buckets.ts';

/** The environment variable that makes a `run` process worker N of a primary. */
export const WORKER_ENV = 'NODE_WAYPOINT_WORKER';
/** Set to 1 for a worker the primary restarts: the replica serves already, so it joins HBONE when ready. */
export const WORKER_RESTART_ENV = 'NODE_WAYPOINT_WORKER_RESTART';

export interface StartedNote {
  readonly pid: number;
  /** NAMESPACE/NAME and the SPIFFE ID, for the primary's "waypoint listening" line. */
  readonly gateway: string;
  readonly identity: string;
  readonly hbone: { ip: string; port: number };
  readonly admin: { ip: string; port: number };
}

/** This process's worker index, or undefined when it is not a worker. */
export function workerIndex(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env[WORKER_ENV];
  return v !== undefined && /^[0-9]+$/.test(v) && process.send ? Number(v) : undefined;
}

/** Read once: the rate-limit filter asks on every request it counts. */
const THIS_WORKER = workerIndex();
let link: Ipc | undefined;
let waypoint: Waypoint | undefined;

/** The channel to the primary (made on first use), or undefined when this process is not a worker. */
export function workerLink(): Ipc | undefined {
  if (link || THIS_WORKER === undefined) return link;
  link = new Ipc((m) => process.send!(m), {
    ready: () => (waypoint ? (waypoint.readiness.notReadyBecause() ?? null) : 'starting'),
    metrics: () => (waypoint ? waypoint.metrics.registry.getMetricsAsJSON() : []),
  });
  process.on('message', (m) => link?.receive(m as IpcMessage));
  // The primary is gone (killed): drain as on SIGTERM rather than serve on unsupervised.
  process.once('disconnect', () => {
    link?.close('the primary is gone');
    process.kill(process.pid, 'SIGTERM');
  });
  process.channel?.unref();
  return link;
}

/** A local rate-limit decision from the primary's shared buckets (undefined: not a worker). */
export function consumeShared(r: BucketRequest): Promise<BucketAnswer> | undefined {
  return workerLink()?.call<BucketAnswer>('bucket', r);
}

/** Called once the waypoint listens: the primary learns where, and the scrape gets a per-worker series. */
export function workerStarted(w: Waypoint, about: { gateway: string; identity: string }): void {
  const index = THIS_WORKER;
  const ipc = workerLink();
  if (index === undefined || !ipc || !w.addresses) return;
  waypoint = w;
  registerWorkerSeries(w.metrics.registry, index);
  const note: StartedNote = {
    pid: process.pid,
    ...about,
    hbone: w.addresses.hbone,
    admin: w.addresses.admin,
  };
  ipc.note('started', note);
}

/** `waypoint_worker_requests{worker}`: this worker's HTTP requests, to see how the kernel spreads them. */
function registerWorkerSeries(registry: Registry, index: number): void {
  new client.Gauge({
    name: 'waypoint_worker_requests',
    help: 'HTTP requests served, by worker process (--concurrency).',
    labelNames: ['worker'],
    registers: [registry],
    async collect() {
      const family = registry.getSingleMetric('istio_requests_total');
      const values = family ? (await family.get()).values : [];
      this.set(
        { worker: String(index) },
        values.reduce((n, v) => n + v.value, 0),
      );
    },
  });
}
