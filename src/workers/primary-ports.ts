// The primary's ports: 15000 (admin, forwarded to worker 0: admin-proxy.ts), 15020 /stats/prometheus (every worker's registry and the primary's own,
// aggregated: one replica's totals, as Istio's scrape expects) and 15021 /healthz/ready (200 only
// when every worker answers that it is ready; 503 from the first moment of the drain).
import client from 'prom-client';
import { AdminServer, type Route } from '../admin/admin-server.ts';
import { formatAuthority } from '../hbone/authority.ts';
import { adminProxy, listenAdmin } from './admin-proxy.ts';
import { aggregate, type MetricJson } from './aggregate.ts';
import type { WorkerSlot } from './worker-slot.ts';

interface Workers {
  readonly slots: readonly WorkerSlot[];
  readonly stopping: boolean;
  /** Worker N's private admin address while it runs. */
  target(index?: number): { ip: string; port: number } | undefined;
}

interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface PrimaryPorts {
  readonly addresses: { readonly ready: string; readonly metrics: string; readonly admin: string };
  readonly restarts: client.Counter<'worker'>;
  close(): Promise<void>;
}

const live = (w: Workers): WorkerSlot[] => w.slots.filter((s) => s.started && s.alive);

export function readinessRoute(w: Workers): Route {
  const text = (status: number, body: string) => ({ status, type: 'text/plain', body });
  return async () => {
    if (w.stopping) return text(503, 'not ready: draining\n');
    const why = await Promise.all(
      w.slots.map(async (s, i) => {
        if (!s.started || !s.alive) return `worker ${i}: starting`;
        const answer = await s.call<string | null>('ready', 2_000).catch((e: Error) => e.message);
        return answer === null ? undefined : `worker ${i}: ${answer}`;
      }),
    );
    const missing = why.filter((x) => x !== undefined);
    return missing.length > 0 ? text(503, `not ready: ${missing.join('; ')}\n`) : text(200, 'ready\n');
  };
}

function metricsRoute(w: Workers, own: client.Registry): Route {
  return async () => {
    // A worker that does not answer (restarting) is left out of this scrape rather than failing it.
    const parts = await Promise.all(
      live(w).map((s) => s.call<MetricJson[]>('metrics', 5_000).catch(() => undefined)),
    );
    const merged = aggregate([...parts.filter((p) => p !== undefined), await own.getMetricsAsJSON()]);
    return { status: 200, type: merged.contentType, body: await merged.metrics() };
  };
}

function primaryRegistry(w: Workers): { registry: client.Registry; restarts: client.Counter<'worker'> } {
  const registry = new client.Registry();
  new client.Gauge({
    name: 'waypoint_workers',
    help: 'Worker processes serving (--concurrency).',
    registers: [registry],
    collect() {
      this.set(live(w).length);
    },
  });
  const restarts = new client.Counter({
    name: 'waypoint_worker_restarts_total',
    help: 'Worker processes restarted after they exited unexpectedly.',
    labelNames: ['worker'],
    registers: [registry],
  });
  return { registry, restarts };
}

export async function bindPrimaryPorts(
  w: Workers,
  listen: { readonly ready: Listen; readonly metrics: Listen; readonly admin: Listen },
): Promise<PrimaryPorts> {
  const { registry, restarts } = primaryRegistry(w);
  const metrics = new AdminServer({ 'GET /stats/prometheus': metricsRoute(w, registry) });
  const ready = new AdminServer({ 'GET /healthz/ready': readinessRoute(w) });
  const admin = adminProxy(w);
  const bind = (what: string, server: Pick<AdminServer, 'listen'>, l: Listen) =>
    server.listen(l.host, l.port).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `cannot listen for ${what} on ${formatAuthority(l.host, l.port)}: ${err.code ?? err.message}`,
      );
    });
  const close = async () => {
    admin.closeAllConnections();
    await Promise.all([metrics.close(), ready.close(), new Promise((r) => admin.close(r))]);
  };
  try {
    const [m, r, a] = await Promise.all([
      bind('metrics', metrics, listen.metrics),
      bind('readiness', ready, listen.ready),
      bind('admin', { listen: (h, p) => listenAdmin(admin, h, p) }, listen.admin),
    ]);
    return {
      addresses: {
        metrics: formatAuthority(m.ip, m.port),
        ready: formatAuthority(r.ip, r.port),
        admin: formatAuthority(a.ip, a.port),
      },
      restarts,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
