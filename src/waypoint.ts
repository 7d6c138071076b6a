// The waypoint process, assembled: credentials, configuration source, HBONE in, tunnel dispatch,
// HTTP engine with the filter chain, upstream layers, HBONE out, admin and metrics ports, and the
// drain sequence. main.ts parses flags; this file only wires.
import type { ObjectRef, Snapshot } from '../config/model.ts';
import { FileConfigSource } from '../config/source.ts';
import { FILTER_ORDER } from '../filters/index.ts';
import { AdminServer } from './admin/admin-server.ts';
import { configDump } from './admin/config-dump.ts';
import { formatAuthority, type HostPort } from './hbone/authority.ts';
import { HboneClient } from './hbone/client.ts';
import { type ConnectDecision, type ConnectRequest, HboneServer } from './hbone/server.ts';
import type { Credentials } from './identity/credentials.ts';
import { Readiness } from './lifecycle/readiness.ts';
import { AccessLog, type AccessLogMode } from './observe/access-log.ts';
import type { Logger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import type { FilterFactory } from './pipeline/filter.ts';
import { HttpEngine } from './proxy/http-engine.ts';
import { TunnelDispatcher } from './proxy/tunnel-dispatch.ts';
import { upgradeTransport } from './proxy/upgrade.ts';
import { EndpointPicker } from './upstream/endpoint-picker.ts';
import { Http1Upstream } from './upstream/http1-upstream.ts';
import { Http2Upstream } from './upstream/http2-upstream.ts';
import { compose, pickEndpoint, transport } from './upstream/layers.ts';
import { baggageOf } from './upstream/tunnel-headers.ts';

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface WaypointOptions {
  readonly configPaths: readonly string[];
  readonly gateway: ObjectRef;
  readonly hbone: Listen;
  readonly admin: Listen;
  readonly metrics: Listen;
  readonly credentials: Credentials;
  readonly endpointHbonePort: number;
  readonly clusterDomain?: string;
  readonly accessLog?: AccessLogMode;
  readonly log: Logger;
  /** How long in-flight requests get to finish after SIGTERM before the rest is reset. */
  readonly drainDeadlineMs?: number;
  readonly factories?: readonly FilterFactory[];
  readonly version?: string;
  readonly defaultMetrics?: boolean;
}

export class Waypoint {
  readonly readiness = new Readiness();
  readonly metrics: Metrics;
  readonly #opts: WaypointOptions;
  readonly #log: Logger;
  readonly #config: FileConfigSource;
  readonly #hboneClient: HboneClient;
  readonly #http1: Http1Upstream;
  readonly #http2: Http2Upstream;
  readonly #engine: HttpEngine;
  readonly #dispatcher: TunnelDispatcher;
  readonly #server: HboneServer;
  readonly #admin: AdminServer;
  readonly #metricsServer: AdminServer;
  #snapshot: Snapshot | undefined;
  /** Where the listeners actually bound (port 0 picks one). */
  addresses: { hbone: HostPort; admin: HostPort; metrics: HostPort } | undefined;

  constructor(opts: WaypointOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    const credentials = opts.credentials;
    this.readiness.pass('certificate');
    this.#config = new FileConfigSource([...opts.configPaths], {
      gateway: opts.gateway,
      trustDomain: credentials.identity.trustDomain,
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
    });
    this.#hboneClient = new HboneClient(credentials);
    const baggage = baggageOf({
      namespace: credentials.identity.namespace,
      name: opts.gateway.name,
      cluster: 'Kubernetes',
    });
    const hbonePort = opts.endpointHbonePort;
    this.#http1 = new Http1Upstream(this.#hboneClient, { hbonePort, baggage });
    this.#http2 = new Http2Upstream(this.#hboneClient, { hbonePort, baggage });
    const picker = new EndpointPicker();
    this.metrics = new Metrics(
      {
        hboneSessions: () => this.#server.sessionCount,
        hboneTunnels: () => this.#server.activeTunnels,
        upstreamHttp1Connections: () => this.#http1.connectionCount,
        upstreamHttp2Connections: () => this.#http2.connectionCount,
        upstreamHboneSessions: () => this.#hboneClient.sessionCount,
        draining: () => this.readiness.draining,
        configVersion: () => this.#snapshot?.version ?? 0,
      },
      { defaultMetrics: opts.defaultMetrics ?? true, version: opts.version ?? 'dev' },
    );
    const send = compose(
      [pickEndpoint(picker)],
      transport(this.#http1, this.#http2, upgradeTransport(this.#hboneClient, hbonePort, baggage)),
    );
    this.#engine = new HttpEngine({
      factories: opts.factories ?? FILTER_ORDER,
      send,
      metrics: this.metrics,
      accessLog: new AccessLog(opts.accessLog ?? 'errors'),
      log: opts.log,
      localAddress: () =>
        this.addresses ? formatAuthority(this.addresses.hbone.ip, this.addresses.hbone.port) : '-',
    });
    this.#dispatcher = new TunnelDispatcher(
      this.#engine,
      {
        hbone: this.#hboneClient,
        picker,
        metrics: this.metrics,
        log: opts.log,
        hbonePort,
        baggage,
      },
      opts.log,
    );
    this.#server = new HboneServer(
      credentials,
      {
        route: (req) => this.#route(req),
        onRejected: (_req, reason) => this.metrics.tunnelRejected(reason),
      },
      opts.log,
    );
    this.#admin = new AdminServer({
      'GET /healthz/ready': () => {
        const why = this.readiness.notReadyBecause();
        return why
          ? { status: 503, type: 'text/plain', body: `not ready: ${why}\n` }
          : { status: 200, type: 'text/plain', body: 'ready\n' };
      },
      'GET /config_dump': () => ({
        status: 200,
        type: 'application/json',
        body: configDump(this.#snapshot, { ready: this.readiness.notReadyBecause() ?? 'ready' }),
      }),
    });
    this.#metricsServer = new AdminServer({
      'GET /stats/prometheus': async () => ({
        status: 200,
        type: this.metrics.registry.contentType,
        body: await this.metrics.render(),
      }),
    });
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  get inFlight(): number {
    return this.#engine.inFlight;
  }

  /** Loads the configuration, binds the ports and starts watching. Throws if a port cannot be bound. */
  async start(): Promise<void> {
    await this.#reload();
    this.#config.watch((result) => this.#applyResult(result));
    const [hbone, admin, metrics] = await Promise.all([
      this.#server.listen(this.#opts.hbone.host, this.#opts.hbone.port),
      this.#admin.listen(this.#opts.admin.host, this.#opts.admin.port),
      this.#metricsServer.listen(this.#opts.metrics.host, this.#opts.metrics.port),
    ]);
    this.addresses = { hbone, admin, metrics };
    this.readiness.pass('listeners');
    this.#log.info('waypoint listening', {
      gateway: `${this.#opts.gateway.namespace}/${this.#opts.gateway.name}`,
      identity: this.#opts.credentials.identity.uri,
      hbone: formatAuthority(hbone.ip, hbone.port),
      admin: formatAuthority(admin.ip, admin.port),
      metrics: formatAuthority(metrics.ip, metrics.port),
    });
  }

  /**
   * The drain sequence: readiness fails at once; GOAWAY on every HBONE session and inner HTTP/2
   * session, `Connection: close` on HTTP/1; in-flight requests get until the deadline; then the
   * rest is reset and everything closes.
   */
  async shutdown(): Promise<{ drained: boolean; abandoned: number }> {
    const deadline = this.#opts.drainDeadlineMs ?? 20_000;
    this.readiness.startDraining();
    this.#log.info('drain: readiness failing, GOAWAY sent', {
      in_flight: this.#engine.inFlight,
      deadline_ms: deadline,
    });
    this.#server.drain();
    this.#dispatcher.drain();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.#engine.idle().then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), deadline);
      }),
    ]);
    clearTimeout(timer);
    const abandoned = this.#engine.inFlight;
    this.#log.info(drained ? 'drain: all requests finished' : 'drain: deadline passed, resetting the rest', {
      abandoned,
    });
    await this.close();
    return { drained, abandoned };
  }

  async close(): Promise<void> {
    this.#config.close();
    await Promise.all([
      this.#server.close(),
      this.#admin.close(),
      this.#metricsServer.close(),
      this.#http1.close(),
    ]);
    this.#http2.close();
    this.#hboneClient.close();
  }

  /** Re-reads the configuration now (tests; the watcher does this on file changes). */
  async reload(): Promise<void> {
    await this.#reload();
  }

  async #reload(): Promise<void> {
    try {
      this.#applyResult(await this.#config.load());
    } catch (err) {
      this.metrics.configReloads.labels('failed').inc();
      this.#log.error('config: load failed, keeping the configuration in force', { error: String(err) });
    }
  }

  #applyResult(result: Awaited<ReturnType<FileConfigSource['load']>>): void {
    const { report, snapshot } = result;
    for (const m of report.rejected) this.#log.error(`config: rejected: ${m.message}`);
    for (const m of report.warnings) this.#log.warn(`config: ${m.message}`);
    if (report.rejected.length > 0) this.metrics.configRejections.inc(report.rejected.length);
    if (!snapshot) {
      this.metrics.configReloads.labels('unchanged').inc();
      if (!this.#snapshot) this.#log.warn('config: no configuration yet');
      return;
    }
    this.#snapshot = snapshot;
    this.metrics.configReloads.labels('applied').inc();
    this.readiness.pass('config');
    for (const m of snapshot.messages) {
      if (m.severity === 'error') this.#log.error(`config: ${m.message}`);
      else this.#log.warn(`config: ${m.message}`);
    }
    this.#log.info('config: applied', {
      version: snapshot.version,
      gateway_found: snapshot.gateway.found,
      services: snapshot.services.size,
      workloads: snapshot.workloads.size,
      rejected: report.rejected.length,
    });
  }

  #route(req: ConnectRequest): ConnectDecision {
    const snapshot = this.#snapshot;
    if (!snapshot)
      return {
        accept: false,
        reason: 'hbone_destination_not_served',
        detail: 'no configuration applied yet',
      };
    const key = formatAuthority(req.authority.ip, req.authority.port);
    const binding = snapshot.services.get(key) ?? snapshot.workloads.get(req.authority.ip);
    if (!binding) {
      return {
        accept: false,
        reason: 'hbone_destination_not_served',
        detail: `${key} is not a Service VIP:port or pod bound to waypoint ${snapshot.gateway.ref.namespace}/${snapshot.gateway.ref.name}`,
      };
    }
    const tunnel = { binding, peer: req.peer, source: req.source, destination: req.authority, snapshot };
    return { accept: true, serve: (stream) => this.#dispatcher.serve(stream, tunnel) };
  }
}
