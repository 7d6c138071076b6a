// `node-waypoint controller`: one reflector per watched kind feeding the cluster slice source,
// the config stream serving it to waypoints, readiness once every kind has listed, and metrics.
// It writes nothing to the API, so any number of replicas run side by side without election.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, Registry } from 'prom-client';
import type { HostPort } from '../hbone/authority.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { ClusterSliceSource } from './cluster-slice-source.ts';
import { Reflector, type ReflectorOptions } from './reflector.ts';
import { type ConfigStreamServer, startConfigStreamServer } from './stream-server.ts';
import { watchedKinds } from './watched-kinds.ts';

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly listen: HostPort;
  readonly health: HostPort;
  readonly credentials: Credentials;
  readonly log: Logger;
  readonly rootNamespace?: string;
  readonly clusterDomain?: string;
  /** Reflector tuning (tests shorten the stall limit and back-off). */
  readonly reflector?: Partial<
    Pick<ReflectorOptions, 'stallTimeoutMs' | 'pageSize' | 'backoff' | 'absentRetryMs'>
  >;
  readonly debounceMs?: number;
}

export interface Controller {
  readonly source: ClusterSliceSource;
  readonly stream: ConfigStreamServer;
  /** Where /healthz/ready and /metrics are served. */
  readonly health: HostPort;
  readonly metrics: Registry;
  close(): Promise<void>;
}

export async function startController(opts: ControllerOptions): Promise<Controller> {
  const kinds = watchedKinds(opts.rootNamespace ?? 'istio-system');
  const source = new ClusterSliceSource(
    kinds.map((k) => k.kind),
    {
      rootNamespace: opts.rootNamespace ?? 'istio-system',
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
    },
  );
  const metrics = new Registry();
  const reflectors: Reflector[] = [];
  const m = reflectorMetrics(metrics, reflectors);
  reflectors.push(
    ...kinds.map(
      (kind) =>
        new Reflector({
          kubeConfig: opts.kubeConfig,
          kind,
          handler: source.handlerFor(kind.kind),
          log: (level, message, fields) => opts.log[level](message, fields),
          onRestart: (reason) => m.restarts.inc({ kind: kind.kind, reason }),
          onRelist: () => m.relists.inc({ kind: kind.kind }),
          ...opts.reflector,
        }),
    ),
  );
  const healthServer = await serveHealth(opts.health, source, metrics);
  const stream = await startConfigStreamServer({
    source,
    listen: { host: opts.listen.ip, port: opts.listen.port },
    credentials: opts.credentials,
    log: opts.log,
    metrics,
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
  });
  for (const r of reflectors) r.start();
  const logSynced = setInterval(() => {
    if (!source.synced) return;
    clearInterval(logSynced);
    opts.log.info('controller: every kind listed; ready', {
      objects: reflectors.reduce((n, r) => n + r.size, 0),
    });
  }, 100);
  logSynced.unref();
  const address = healthServer.address() as AddressInfo;
  return {
    source,
    stream,
    metrics,
    health: { ip: address.address, port: address.port },
    close: async () => {
      clearInterval(logSynced);
      await stream.close();
      await Promise.all(reflectors.map((r) => r.stop()));
      healthServer.closeAllConnections();
      await new Promise<void>((resolve) => healthServer.close(() => resolve()));
    },
  };
}

function reflectorMetrics(registry: Registry, reflectors: readonly Reflector[]) {
  return {
    objects: new Gauge({
      name: 'waypoint_controller_objects',
      help: 'Objects cached per watched kind',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        for (const r of reflectors) this.set({ kind: r.kind.kind }, r.size);
      },
    }),
    synced: new Gauge({
      name: 'waypoint_controller_kind_synced',
      help: '1 once the kind has had its first full list (or its CRD is absent)',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        for (const r of reflectors) this.set({ kind: r.kind.kind }, r.synced ? 1 : 0);
      },
    }),
    restarts: new Counter({
      name: 'waypoint_controller_watch_restarts_total',
      help: 'Watch restarts per kind and reason (watch_ended, gone, stalled, error, not_installed)',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    relists: new Counter({
      name: 'waypoint_controller_relists_total',
      help: 'Full re-lists per kind after 410 Gone (watch or continue token)',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}

/** /healthz/ready: 200 once every kind has synced, else 503; /metrics: Prometheus text. */
async function serveHealth(at: HostPort, source: ClusterSliceSource, metrics: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz/ready') {
      res.writeHead(source.synced ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(source.synced ? 'ready\n' : 'not synced: still listing\n');
    } else if (req.url === '/metrics') {
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.ip, () => resolve());
  });
  return server;
}
