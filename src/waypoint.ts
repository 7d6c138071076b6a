// The waypoint process, assembled: credentials, configuration source, HBONE in, tunnel dispatch,
// HTTP engine with the filter chain, upstream layers, HBONE out, admin and metrics ports, and the
// drain sequence. main.ts parses flags; this file only wires.
import { readFile } from 'node:fs/promises';
import type { ServerHttp2Stream } from 'node:http2';
import type { Writable } from 'node:stream';
import type { ConfigMessage, ObjectRef, Snapshot } from '../config/model.ts';
import { FileConfigSource } from '../config/source.ts';
import { type FileWatch, watchFile } from '../config/watch-file.ts';
import { AUTHZ, withDecisionSink } from '../filters/authz/index.ts';
import { type ExtensionProvider, parseMeshConfig } from '../filters/authz/mesh-config.ts';
import { type FilterChain, filterChain } from '../filters/index.ts';
import {
  FILTER_NAME as RATE_LIMIT,
  type RateLimitFactory,
  rateLimitFactory,
} from '../filters/rate-limit/index.ts';
import { tcpTarget } from '../filters/routing/tcp.ts';
import { AdminServer } from './admin/admin-server.ts';
import { configDump } from './admin/config-dump.ts';
import {
  checkExplainInput,
  ExplainDestinationError,
  ExplainInputError,
  explainRequest,
} from './explain/explain.ts';
import { formatAuthority, type HostPort } from './hbone/authority.ts';
import { HboneClient } from './hbone/client.ts';
import { type ConnectDecision, type ConnectRequest, HboneServer } from './hbone/server.ts';
import type { Credentials } from './identity/credentials.ts';
import { Readiness } from './lifecycle/readiness.ts';
import { AccessLog, type AccessLogMode } from './observe/access-log.ts';
import type { Logger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import type { Binding, TunnelInfo } from './pipeline/context.ts';
import { type FilterFactory, filterCompilers } from './pipeline/filter.ts';
import { HttpEngine } from './proxy/http-engine.ts';
import { TunnelDispatcher } from './proxy/tunnel-dispatch.ts';
import { upgradeTransport } from './proxy/upgrade.ts';
import { CircuitBreakers } from './upstream/circuit-breaker.ts';
import type { Cluster } from './upstream/cluster.ts';
import { EndpointPicker } from './upstream/endpoint-picker.ts';
import { Http1Upstream } from './upstream/http1-upstream.ts';
import { Http2Upstream } from './upstream/http2-upstream.ts';
import { compose, pickEndpoint, transport } from './upstream/layers.ts';
import { mirror } from './upstream/mirror.ts';
import { OutlierDetector } from './upstream/outlier-detection.ts';
import { retry } from './upstream/retry.ts';
import { timeout } from './upstream/timeout.ts';
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
  /** Where access-log lines go (default stdout); tests capture them here. */
  readonly accessLogStream?: Writable;
  readonly log: Logger;
  /** How long in-flight requests get to finish after SIGTERM before the rest is reset. */
  readonly drainDeadlineMs?: number;
  /** A stream with no byte either way for this long ends (Envoy's stream_idle_timeout; default 5 min, 0: none). */
  readonly streamIdleTimeoutMs?: number;
  /** An inner HTTP/1.x request head must be complete this long after its first byte (default 10 s). */
  readonly requestHeadTimeoutMs?: number;
  /** Tunnels one client identity may hold with their first request head incomplete (default 64). */
  readonly maxPendingHeadsPerIdentity?: number;
  /** `safe`: a route without a retry field retries only requests that never reached the app. */
  readonly defaultRetry?: 'istio' | 'safe';
  readonly factories?: readonly FilterFactory[];
  /**
   * The mesh config's ext_authz providers (`run --mesh-config`), for CUSTOM AuthorizationPolicy.
   * Used by the default filter chain (ignored when `factories` is given).
   */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /**
   * The `--mesh-config` file `extensionProviders` came from: watched, and on a change re-read and
   * applied without a restart (a bad file is logged and the providers in force stay).
   */
  readonly meshConfigPath?: string;
  /** Redis for Global rate limits (`run --redis-url`); without it Global rules take the failure mode. */
  readonly redisUrl?: string;
  /** What a request gets when Redis cannot answer a Global rate limit (default open). */
  readonly redisFailureMode?: 'open' | 'closed';
  readonly version?: string;
  readonly defaultMetrics?: boolean;
}

export class Waypoint {
  readonly readiness = new Readiness();
  readonly metrics: Metrics;
  readonly #opts: WaypointOptions;
  readonly #log: Logger;
  readonly #config: FileConfigSource;
  /** The rate-limit filter wired to Redis and the metrics (closed with the waypoint). */
  readonly #rateLimit: RateLimitFactory;
  readonly #chain: FilterChain;
  readonly #hboneClient: HboneClient;
  readonly #http1: Http1Upstream;
  readonly #http2: Http2Upstream;
  readonly #picker: EndpointPicker;
  readonly #engine: HttpEngine;
  readonly #dispatcher: TunnelDispatcher;
  readonly #server: HboneServer;
  readonly #admin: AdminServer;
  readonly #metricsServer: AdminServer;
  #snapshot: Snapshot | undefined;
  /** What the latest load rejected (each load reads every file, so this is what is wrong now). */
  #rejected: readonly ConfigMessage[] = [];
  /** Tunnels spliced as TCP or TLS: the drain waits for them as it waits for HTTP requests. */
  readonly #opaqueTunnels = new Set<ServerHttp2Stream>();
  #meshWatch: FileWatch | undefined;
  /** The mesh config text in force (a reload that reads the same text changes nothing). */
  #meshText: string | undefined;
  /** Mesh config reloads run one at a time. */
  #meshReload: Promise<void> = Promise.resolve();
  /** Where the listeners actually bound (port 0 picks one). */
  addresses: { hbone: HostPort; admin: HostPort; metrics: HostPort } | undefined;

  constructor(opts: WaypointOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    const credentials = opts.credentials;
    this.readiness.pass('certificate');
    this.#chain = opts.factories
      ? { factories: opts.factories, close: () => {} }
      : filterChain({ extensionProviders: opts.extensionProviders ?? [] });
    this.#config = new FileConfigSource([...opts.configPaths], {
      gateway: opts.gateway,
      trustDomain: credentials.identity.trustDomain,
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
      filterCompilers: filterCompilers(this.#chain.factories),
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
    const picker = new EndpointPicker({
      outlier: new OutlierDetector({
        onEject: (e) => {
          this.metrics.outlierEjections.labels(e.cluster, e.type).inc();
          opts.log.info('outlier detection: endpoint ejected', {
            cluster: e.cluster,
            host: e.host,
            type: e.type,
            ejections: e.ejections,
            duration_ms: e.durationMs,
          });
        },
        onUnEject: (e) =>
          opts.log.info('outlier detection: endpoint back', { cluster: e.cluster, host: e.host }),
      }),
      breakers: new CircuitBreakers({
        onOverflow: (cluster, limit) => this.metrics.circuitBreakerOverflows.labels(cluster, limit).inc(),
      }),
    });
    this.#picker = picker;
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
      // The route timeout covers every attempt; each retry picks an endpoint again.
      [
        mirror({
          onError: (m, err) =>
            opts.log.debug('mirror request failed', { cluster: m.cluster.name, error: String(err) }),
        }),
        timeout({ defaultIdleMs: opts.streamIdleTimeoutMs ?? 300_000 }),
        retry({ breakers: picker.breakers, defaultRetry: opts.defaultRetry ?? 'istio' }),
        pickEndpoint(picker),
      ],
      transport(this.#http1, this.#http2, upgradeTransport(this.#hboneClient, hbonePort, baggage)),
    );
    // The rate-limit filter gets Redis (--redis-url) and counts into waypoint_rate_limit_*.
    this.#rateLimit = rateLimitFactory({
      ...(opts.redisUrl ? { redis: { url: opts.redisUrl } } : {}),
      failureMode: opts.redisFailureMode ?? 'open',
      log: opts.log,
      sink: {
        decision: (policy, type, result) => this.metrics.rateLimitDecision(policy, type, result),
        redisFailure: (mode) => this.metrics.rateLimitRedisFailures.labels(mode).inc(),
      },
    });
    // The proxy's authz filter reports each decision to waypoint_authz_decisions_total.
    const factories = this.#chain.factories.map((f) =>
      f.name === AUTHZ
        ? withDecisionSink(f, (_set, d) => {
            for (const r of d.records) this.metrics.authzDecision(r.policy, r.action, r.decision);
          })
        : f.name === RATE_LIMIT
          ? this.#rateLimit
          : f,
    );
    this.#engine = new HttpEngine({
      factories,
      send,
      metrics: this.metrics,
      accessLog: new AccessLog(opts.accessLog ?? 'errors', opts.accessLogStream),
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
        route: tcpRoute,
      },
      opts.log,
      {
        ...(opts.requestHeadTimeoutMs !== undefined
          ? { requestHeadTimeoutMs: opts.requestHeadTimeoutMs }
          : {}),
        ...(opts.maxPendingHeadsPerIdentity !== undefined
          ? { maxPendingHeadsPerIdentity: opts.maxPendingHeadsPerIdentity }
          : {}),
      },
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
        body: configDump(this.#snapshot, {
          ready: this.readiness.notReadyBecause() ?? 'ready',
          rejected: this.#rejected,
        }),
      }),
      // What the waypoint would decide for a hypothetical request, on the snapshot in force (the
      // chain is built apart from the engine's, so explaining counts no metrics).
      'POST /debug/explain': async (_req, body) => {
        const json = (status: number, v: unknown) => ({
          status,
          type: 'application/json',
          body: `${JSON.stringify(v, null, 2)}\n`,
        });
        const snapshot = this.#snapshot;
        if (!snapshot) return json(503, { error: 'no configuration applied yet' });
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          return json(400, { error: 'body: expected JSON' });
        }
        try {
          const input = checkExplainInput(parsed);
          return json(200, await explainRequest(snapshot, this.#chain.factories, input, this.#log));
        } catch (err) {
          if (err instanceof ExplainInputError) return json(400, { error: err.message });
          if (err instanceof ExplainDestinationError) return json(404, { error: err.message });
          throw err;
        }
      },
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
    this.#config.watch(
      (result) => this.#applyResult(result),
      (err) => {
        this.metrics.configReloads.labels('failed').inc();
        this.#log.error('config: reload failed, keeping the configuration in force', { error: String(err) });
      },
    );
    const meshPath = this.#opts.meshConfigPath;
    if (meshPath && this.#chain.setExtensionProviders) {
      this.#meshText = await readFile(meshPath, 'utf8').catch(() => undefined);
      this.#meshWatch = watchFile(meshPath, () => {
        this.#meshReload = this.#meshReload.then(() => this.#reloadMeshConfig(meshPath));
      });
    }
    let bound: [HostPort, HostPort, HostPort];
    try {
      const bind = (what: string, l: Listen, listen: (host: string, port: number) => Promise<HostPort>) =>
        listen(l.host, l.port).catch((err: NodeJS.ErrnoException) => {
          throw new Error(
            `cannot listen for ${what} on ${formatAuthority(l.host, l.port)}: ${err.code ?? err.message}`,
            {
              cause: err,
            },
          );
        });
      bound = await Promise.all([
        bind('HBONE', this.#opts.hbone, (h, p) => this.#server.listen(h, p)),
        bind('admin', this.#opts.admin, (h, p) => this.#admin.listen(h, p)),
        bind('metrics', this.#opts.metrics, (h, p) => this.#metricsServer.listen(h, p)),
      ]);
    } catch (err) {
      // Whatever did bind, and the config watcher, would keep a failed process alive.
      await this.close();
      throw err;
    }
    const [hbone, admin, metrics] = bound;
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
   * session, `Connection: close` on HTTP/1; in-flight requests, and TCP/TLS tunnels still open,
   * get until the deadline; then the rest is reset and everything closes.
   */
  async shutdown(): Promise<{ drained: boolean; abandoned: number; tunnelsCut: number }> {
    const deadline = this.#opts.drainDeadlineMs ?? 20_000;
    this.readiness.startDraining();
    this.#server.drain();
    this.#dispatcher.drain();
    this.#log.info('drain: readiness failing, GOAWAY sent', {
      in_flight: this.#engine.inFlight,
      tcp_tunnels: this.#opaqueTunnels.size,
      deadline_ms: deadline,
    });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const finished = async (): Promise<boolean> => {
      await this.#engine.idle();
      // TCP and TLS tunnels have no requests to count: they get the deadline too. (HTTP tunnels
      // left open are idle keep-alive connections; close() ends them.)
      while (this.#opaqueTunnels.size > 0 && !timedOut) await new Promise((r) => setTimeout(r, 25));
      return !timedOut;
    };
    const drained = await Promise.race([
      finished(),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => {
          timedOut = true;
          r(false);
        }, deadline);
      }),
    ]);
    clearTimeout(timer);
    timedOut = true;
    const abandoned = this.#engine.inFlight;
    const tunnelsCut = this.#opaqueTunnels.size;
    this.#log.info(drained ? 'drain: all requests finished' : 'drain: deadline passed, resetting the rest', {
      abandoned,
      tunnels_cut: tunnelsCut,
    });
    await this.close();
    return { drained, abandoned, tunnelsCut };
  }

  async close(): Promise<void> {
    this.#config.close();
    this.#meshWatch?.close();
    await Promise.all([
      this.#server.close(),
      this.#admin.close(),
      this.#metricsServer.close(),
      this.#http1.close(),
    ]);
    this.#http2.close();
    this.#hboneClient.close();
    this.#chain.close();
    this.#picker.close();
    await this.#rateLimit.close();
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

  /** Re-reads the mesh config; new providers apply through a recompiled snapshot. */
  async #reloadMeshConfig(path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      this.#log.error('mesh config: reload failed, keeping the ext_authz providers in force', {
        file: path,
        error: (err as NodeJS.ErrnoException).code ?? String(err),
      });
      return;
    }
    if (text === this.#meshText) return;
    let providers: ExtensionProvider[];
    try {
      providers = parseMeshConfig(text);
    } catch (err) {
      this.#log.error('mesh config: reload failed, keeping the ext_authz providers in force', {
        file: path,
        error: (err as Error).message,
      });
      return;
    }
    this.#meshText = text;
    this.#chain.setExtensionProviders?.(providers);
    try {
      const snapshot = await this.#config.recompile();
      this.#log.info('mesh config: reloaded', {
        file: path,
        providers: providers.map((p) => p.name),
      });
      this.#applySnapshot(snapshot);
    } catch (err) {
      this.metrics.configReloads.labels('failed').inc();
      this.#log.error('config: recompile after the mesh config reload failed', { error: String(err) });
    }
  }

  #applyResult(result: Awaited<ReturnType<FileConfigSource['load']>>): void {
    const { report, snapshot } = result;
    this.#rejected = report.rejected;
    for (const m of report.rejected) this.#log.error(`config: rejected: ${m.message}`);
    for (const m of report.warnings) this.#log.warn(`config: ${m.message}`);
    if (report.rejected.length > 0) this.metrics.configRejections.inc(report.rejected.length);
    if (!snapshot) {
      this.metrics.configReloads.labels('unchanged').inc();
      if (!this.#snapshot) this.#log.warn('config: no configuration yet');
      return;
    }
    this.#applySnapshot(snapshot, report.rejected.length);
  }

  #applySnapshot(snapshot: Snapshot, rejected = this.#rejected.length): void {
    this.#snapshot = snapshot;
    this.metrics.configReloads.labels('applied').inc();
    // A configuration without our Gateway serves nothing: never Ready on that (istio/istio#46495).
    if (snapshot.gateway.found) this.readiness.pass('config');
    else
      this.#log.warn('config: gateway not found, nothing is served', {
        gateway: `${snapshot.gateway.ref.namespace}/${snapshot.gateway.ref.name}`,
      });
    for (const m of snapshot.messages) {
      if (m.severity === 'error') this.#log.error(`config: ${m.message}`);
      else this.#log.warn(`config: ${m.message}`);
    }
    this.#log.info('config: applied', {
      version: snapshot.version,
      gateway_found: snapshot.gateway.found,
      services: snapshot.services.size,
      workloads: snapshot.workloads.size,
      rejected,
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
    // A tunnel can live for hours (keep-alive, HTTP/2, gRPC): each request on it must see the
    // configuration in force when it starts, not the one the CONNECT arrived under. So binding and
    // snapshot are looked up again on every read; if the binding is gone from the new snapshot,
    // the tunnel keeps the version it was accepted with until it closes.
    const isService = snapshot.services.has(key);
    const current = (): { snapshot: Snapshot; binding: Binding } => {
      const now = this.#snapshot;
      if (now === snapshot || !now) return { snapshot, binding };
      const b = isService ? now.services.get(key) : now.workloads.get(req.authority.ip);
      return b ? { snapshot: now, binding: b } : { snapshot, binding };
    };
    const tunnel: TunnelInfo = {
      get binding() {
        return current().binding;
      },
      get snapshot() {
        return current().snapshot;
      },
      peer: req.peer,
      source: req.source,
      destination: req.authority,
    };
    const opaque = binding.kind === 'service' && (binding.protocol === 'tcp' || binding.protocol === 'tls');
    return {
      accept: true,
      serve: (stream) => {
        if (opaque) {
          this.#opaqueTunnels.add(stream);
          stream.once('close', () => this.#opaqueTunnels.delete(stream));
        }
        this.#dispatcher.serve(stream, tunnel);
      },
    };
  }
}

/** Routing's choice for an opaque TCP tunnel, in the shape the TCP proxy takes. */
function tcpRoute(tunnel: TunnelInfo): { cluster: Cluster } | { invalid: string } | undefined {
  const t = tcpTarget(tunnel);
  if (t.kind === 'binding') return undefined;
  return t.kind === 'cluster' ? { cluster: t.cluster } : { invalid: t.why };
}
