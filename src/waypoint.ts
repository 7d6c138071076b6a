// The waypoint process, assembled: credentials, configuration source, HBONE in, tunnel dispatch,
// HTTP engine with the filter chain, upstream layers, HBONE out, admin and metrics ports, and the
// drain sequence. main.ts parses flags; src/compose.ts chooses the filters; this file only wires
// the engine, and knows no filter (src/README.md).
import { readFile } from 'node:fs/promises';
import type { ServerHttp2Stream } from 'node:http2';
import type { Writable } from 'node:stream';
import type { ConfigMessage, ObjectRef, Snapshot } from '../config/model.ts';
import { type ConfigSource, type ConfigSourceInput, FileConfigSource } from '../config/source.ts';
import { type OtlpProvider, parseTracingProviders } from '../config/tracing-providers.ts';
import { type FileWatch, watchFile } from '../config/watch-file.ts';
import { type AdminSources, adminRoutes, prometheusRoute, readyRoute } from './admin/admin-routes.ts';
import { AdminServer } from './admin/admin-server.ts';
import { explainRequest } from './explain/explain.ts';
import { formatAuthority, type HostPort } from './hbone/authority.ts';
import { HboneClient } from './hbone/client.ts';
import { type ConnectDecision, type ConnectRequest, HboneServer } from './hbone/server.ts';
import type { Credentials } from './identity/credentials.ts';
import {
  DEFAULT_OVERLOAD_LIMITS,
  type HeapReading,
  HeapShedder,
  type OverloadLimits,
} from './lifecycle/overload.ts';
import { Readiness } from './lifecycle/readiness.ts';
import { AccessLog, type AccessLogEncoding, type AccessLogMode } from './observe/access-log.ts';
import type { Logger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import { TELEMETRY, type TracingPolicy, telemetryCompiler } from './observe/telemetry-select.ts';
import { Tracing, type TracingSettings } from './observe/tracing.ts';
import { tracingSettings } from './observe/tracing-exporter.ts';
import { type ChainFactories, filterCompilers, type MeshConfigCheck } from './pipeline/filter.ts';
import { HttpEngine } from './proxy/http-engine.ts';
import { LiveTunnel } from './proxy/live-tunnel.ts';
import { TunnelDispatcher } from './proxy/tunnel-dispatch.ts';
import { upgradeTransport } from './proxy/upgrade.ts';
import { CircuitBreakers } from './upstream/circuit-breaker.ts';
import { EndpointPicker } from './upstream/endpoint-picker.ts';
import { Http1Upstream } from './upstream/http1-upstream.ts';
import { Http2Upstream } from './upstream/http2-upstream.ts';
import { compose, pickEndpoint, transport } from './upstream/layers.ts';
import { hostKey } from './upstream/load-balancer.ts';
import { mirror } from './upstream/mirror.ts';
import { OutlierDetector } from './upstream/outlier-detection.ts';
import { type PendingLimit, pendingLimit } from './upstream/pending-limit.ts';
import { retry } from './upstream/retry.ts';
import { timeout } from './upstream/timeout.ts';
import { traceAttempt } from './upstream/trace-attempt.ts';
import { baggageOf } from './upstream/tunnel-headers.ts';
import type { Send } from './upstream/types.ts';

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface WaypointOptions {
  readonly configPaths: readonly string[];
  readonly gateway: ObjectRef;
  readonly hbone: Listen;
  /** The admin pages (config_dump, clusters, stats, logging, certs, explain): keep it on loopback. */
  readonly admin: Listen;
  /** `/healthz/ready` alone, for the kubelet (absent: not bound; the admin listener answers it too). */
  readonly ready?: Listen;
  readonly metrics: Listen;
  /** One worker of `run --concurrency N`: HBONE's port is shared with its siblings (SO_REUSEPORT). */
  readonly reusePort?: boolean;
  /**
   * Bind HBONE only once the certificate and the first configuration are in: a worker restarted in
   * a ready replica would otherwise get its share of new tunnels (SO_REUSEPORT) before it can serve
   * them, while readiness keeps a single process out of traffic.
   */
  readonly hboneAfterReady?: boolean;
  readonly credentials: Credentials;
  readonly endpointHbonePort: number;
  readonly clusterDomain?: string;
  /** The cluster this waypoint runs in (`--cluster-id`, ISTIO_META_CLUSTER_ID): source/destination_cluster, baggage. */
  readonly clusterId?: string;
  readonly accessLog?: AccessLogMode;
  /** text (Istio's default format) or json (mesh config accessLogEncoding: JSON). */
  readonly accessLogEncoding?: AccessLogEncoding;
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
  /**
   * `safe`: a route without a retry field retries only requests that never reached the app. The
   * routing filter applies it (src/compose.ts); the engine reports it in /server_info.
   */
  readonly defaultRetry?: 'istio' | 'safe';
  /** The filters (src/compose.ts builds them): each snapshot's chain, explain's, the mesh config hook. */
  readonly filters: ChainFactories;
  /**
   * The `--mesh-config` file: watched, and on a change re-read and handed to the filters and
   * tracing without a restart (a bad file is logged and what is in force stays).
   */
  readonly meshConfigPath?: string;
  readonly version?: string;
  readonly defaultMetrics?: boolean;
  /** Overload limits and heap marks (src/lifecycle/overload.ts); each unset one takes its default. */
  readonly overload?: Partial<OverloadLimits>;
  /** Where heap use is read (tests force the shedding state); default V8's heap statistics. */
  readonly heapReader?: () => HeapReading;
  /** Request head limit, inner HTTP/1.1 and HTTP/2 (Envoy's max_request_headers_kb: 60). */
  readonly maxRequestHeadersBytes?: number;
  /** Request body bytes kept per request so a retry can resend it (Envoy's per-request buffer). */
  readonly maxReplayBufferBytes?: number;
  /** Where the configuration comes from instead of configPaths (`run --controller`). */
  readonly configSource?: (input: ConfigSourceInput) => ConfigSource;
  /** Request tracing at start (tests: an in-memory exporter); `waypoint.tracing.configure` changes it live. */
  readonly tracing?: TracingSettings;
  /** The mesh config's opentelemetry providers (`run --mesh-config`), selected by Telemetry. */
  readonly tracingProviders?: readonly OtlpProvider[];
  /** Istio's root namespace: its Telemetry without selector is the mesh default (istio-system). */
  readonly rootNamespace?: string;
}

export class Waypoint {
  readonly readiness = new Readiness();
  readonly metrics: Metrics;
  /** Spans per request and attempt; off until configured with an exporter. */
  readonly tracing: Tracing;
  /** Heap-based shedding: sampled while the waypoint runs. */
  readonly heap: HeapShedder;
  readonly #pending: PendingLimit;
  readonly #opts: WaypointOptions;
  readonly #log: Logger;
  readonly #config: ConfigSource;
  readonly #filters: ChainFactories;
  readonly #hboneClient: HboneClient;
  readonly #http1: Http1Upstream;
  readonly #http2: Http2Upstream;
  readonly #picker: EndpointPicker;
  readonly #engine: HttpEngine;
  readonly #accessLog: AccessLog;
  readonly #dispatcher: TunnelDispatcher;
  readonly #server: HboneServer;
  readonly #admin: AdminServer;
  readonly #metricsServer: AdminServer;
  readonly #ready: AdminServer;
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
  #tracingProviders: readonly OtlpProvider[];
  /** The Telemetry policy and providers tracing was last configured from (reconfigure on change only). */
  #tracingKey = '';
  /** The snapshot in force, for tunnels accepted under an older one (one function for all). */
  readonly #currentSnapshot = (): Snapshot | undefined => this.#snapshot;
  /** Where the listeners actually bound (port 0 picks one). */
  addresses: { hbone: HostPort; admin: HostPort; metrics: HostPort; ready?: HostPort } | undefined;

  constructor(opts: WaypointOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#filters = opts.filters;
    const credentials = opts.credentials;
    if (credentials.certificateReady)
      void credentials.certificateReady.then(() => this.readiness.pass('certificate'));
    else this.readiness.pass('certificate');
    this.#config = this.#configSource();
    const hbonePort = opts.endpointHbonePort;
    const baggage = baggageOf({
      namespace: credentials.identity.namespace,
      name: opts.gateway.name,
      cluster: opts.clusterId ?? 'Kubernetes',
    });
    this.#hboneClient = new HboneClient(credentials);
    this.#http1 = new Http1Upstream(this.#hboneClient, { hbonePort, baggage });
    this.#http2 = new Http2Upstream(this.#hboneClient, { hbonePort, baggage });
    this.#picker = this.#endpointPicker();
    const limits = { ...DEFAULT_OVERLOAD_LIMITS, ...opts.overload };
    this.heap = heapShedder(opts, limits);
    this.#pending = pendingLimit({
      maxPending: limits.maxPendingRequests,
      shedding: () => this.heap.shedding,
      onRefused: (limit) => this.metrics.overloadRefusals.labels(limit).inc(),
    });
    this.#accessLog = new AccessLog(opts.accessLog ?? 'errors', opts.accessLogStream, opts.accessLogEncoding);
    this.metrics = this.#newMetrics();
    this.tracing = new Tracing(tracingIdentity(opts), opts.tracing);
    this.#tracingProviders = opts.tracingProviders ?? [];
    credentials.registerMetrics?.(this.metrics.registry);
    this.#engine = new HttpEngine({
      factories: this.#filters.serving,
      filterContext: { log: opts.log, metrics: this.metrics.filterCounters },
      send: this.#upstreamLayers(baggage),
      metrics: this.metrics,
      accessLog: this.#accessLog,
      log: opts.log,
      tracing: this.tracing,
      localAddress: () =>
        this.addresses ? formatAuthority(this.addresses.hbone.ip, this.addresses.hbone.port) : '-',
    });
    this.#dispatcher = this.#tunnelDispatcher(baggage);
    this.#server = this.#hboneServer(limits);
    this.#admin = new AdminServer(adminRoutes(this.#adminSources()));
    this.#ready = new AdminServer({ 'GET /healthz/ready': readyRoute(this.readiness) });
    this.#metricsServer = new AdminServer({ 'GET /stats/prometheus': prometheusRoute(this.metrics) });
  }

  /** The configuration source (files, or `opts.configSource`), compiling with the filters' compilers. */
  #configSource(): ConfigSource {
    const opts = this.#opts;
    const input = {
      gateway: opts.gateway,
      trustDomain: opts.credentials.identity.trustDomain,
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
      filterCompilers: {
        ...filterCompilers(this.#filters.serving),
        [TELEMETRY]: telemetryCompiler(opts.gateway, opts.rootNamespace ?? 'istio-system'),
      },
    };
    return (
      opts.configSource?.({
        ...input,
        // A --mesh-config file, when given, stays the one source of ext_authz providers.
        ...(opts.meshConfigPath ? {} : { applyMeshConfig: (text) => this.#applyMeshText(text) }),
      }) ?? new FileConfigSource([...opts.configPaths], input)
    );
  }

  /** Endpoint choice with outlier detection and circuit breakers, both counted and logged. */
  #endpointPicker(): EndpointPicker {
    const log = this.#log;
    return new EndpointPicker({
      outlier: new OutlierDetector({
        onEject: (e) => {
          this.metrics.outlierEjections.labels(e.cluster, e.type).inc();
          log.info('outlier detection: endpoint ejected', {
            cluster: e.cluster,
            host: e.host,
            type: e.type,
            ejections: e.ejections,
            duration_ms: e.durationMs,
          });
        },
        onUnEject: (e) => log.info('outlier detection: endpoint back', { cluster: e.cluster, host: e.host }),
      }),
      breakers: new CircuitBreakers({
        onOverflow: (cluster, limit) => this.metrics.circuitBreakerOverflows.labels(cluster, limit).inc(),
      }),
    });
  }

  #newMetrics(): Metrics {
    const opts = this.#opts;
    return new Metrics(
      {
        hboneSessions: () => this.#server.sessionCount,
        hboneTunnels: () => this.#server.activeTunnels,
        upstreamHttp1Connections: () => this.#http1.connectionCount,
        upstreamHttp2Connections: () => this.#http2.connectionCount,
        upstreamHboneSessions: () => this.#hboneClient.sessionCount,
        draining: () => this.readiness.draining,
        configVersion: () => this.#snapshot?.version ?? 0,
        overloadHeapShedding: () => (this.heap.shedding ? 1 : 0),
        upstreamPendingRequests: () => this.#pending.pending(),
      },
      {
        defaultMetrics: opts.defaultMetrics ?? true,
        version: opts.version ?? 'dev',
        clusterId: opts.clusterId ?? 'Kubernetes',
      },
    );
  }

  /** The upstream layers, outermost first, down to the HBONE transports. */
  #upstreamLayers(baggage: string): Send {
    const opts = this.#opts;
    const hbonePort = opts.endpointHbonePort;
    return compose(
      // The route timeout covers every attempt; each retry picks an endpoint again.
      [
        this.#pending.layer,
        mirror({
          onError: (m, err) =>
            opts.log.debug('mirror request failed', { cluster: m.cluster.name, error: String(err) }),
        }),
        timeout({ defaultIdleMs: opts.streamIdleTimeoutMs ?? 300_000 }),
        retry({
          breakers: this.#picker.breakers,
          ...(opts.maxReplayBufferBytes !== undefined ? { maxReplayBytes: opts.maxReplayBufferBytes } : {}),
        }),
        traceAttempt(),
        pickEndpoint(this.#picker),
      ],
      transport(this.#http1, this.#http2, upgradeTransport(this.#hboneClient, hbonePort, baggage)),
    );
  }

  /** What runs in an accepted tunnel: sniffing, HTTP into the engine, opaque TCP routed by the filters. */
  #tunnelDispatcher(baggage: string): TunnelDispatcher {
    const opts = this.#opts;
    return new TunnelDispatcher(
      this.#engine,
      {
        hbone: this.#hboneClient,
        picker: this.#picker,
        metrics: this.metrics,
        log: opts.log,
        hbonePort: opts.endpointHbonePort,
        baggage,
        route: (tunnel) => this.#engine.chainFor(tunnel.snapshot).tcpRoute(tunnel),
        accessLog: this.#accessLog,
      },
      opts.log,
      {
        ...(opts.maxRequestHeadersBytes !== undefined ? { maxHeaderBytes: opts.maxRequestHeadersBytes } : {}),
        ...(opts.requestHeadTimeoutMs !== undefined
          ? { requestHeadTimeoutMs: opts.requestHeadTimeoutMs }
          : {}),
        ...(opts.maxPendingHeadsPerIdentity !== undefined
          ? { maxPendingHeadsPerIdentity: opts.maxPendingHeadsPerIdentity }
          : {}),
      },
    );
  }

  /** HBONE in: admission (tunnel and heap limits), rejections counted, CONNECTs routed. */
  #hboneServer(limits: OverloadLimits): HboneServer {
    return new HboneServer(
      this.#opts.credentials,
      {
        route: (req) => this.#route(req),
        onRejected: (_req, reason) => {
          this.metrics.tunnelRejected(reason);
          if (reason === 'overload_tunnels') this.metrics.overloadRefusals.labels('tunnels').inc();
          if (reason === 'overload_heap') this.metrics.overloadRefusals.labels('heap').inc();
        },
        admit: (active) =>
          active >= limits.maxTunnels ? 'overload_tunnels' : this.heap.shedding ? 'overload_heap' : undefined,
        onConnectionDropped: () => this.metrics.overloadRefusals.labels('connections').inc(),
      },
      this.#opts.log,
      { maxConnections: limits.maxConnections, maxTunnelsPerConnection: limits.maxTunnelsPerConnection },
    );
  }

  /** What the admin pages read. */
  #adminSources(): AdminSources {
    return {
      snapshot: () => this.#snapshot,
      rejected: () => this.#rejected,
      configSource: () => ({
        ...this.#config.describe(),
        resources: this.#config.resources.map((r) => ({
          kind: r.kind,
          namespace: r.namespace,
          name: r.name,
          origin: r.origin,
        })),
      }),
      readiness: this.readiness,
      metrics: this.metrics,
      picker: this.#picker,
      credentials: this.#opts.credentials,
      log: this.#log,
      serverInfo: () => this.#serverInfo(),
      startedAt: new Date(),
      // explain builds chains of its own from the explaining factories: it counts no metrics.
      explain: (snapshot, input) => explainRequest(snapshot, this.#filters.explaining, input, this.#log),
    };
  }

  /** /server_info: the node as Istio names a waypoint's, and the options in force. */
  #serverInfo(): { version: string; node: Record<string, string>; options: Record<string, unknown> } {
    const o = this.#opts;
    const ns = o.gateway.namespace;
    const ip = this.addresses?.hbone.ip ?? o.hbone.host;
    return {
      version: o.version ?? 'dev',
      node: {
        id: `waypoint~${ip}~${o.gateway.name}.${ns}~${ns}.svc.${o.clusterDomain ?? 'cluster.local'}`,
        cluster: `${o.gateway.name}.${ns}`,
        cluster_id: o.clusterId ?? 'Kubernetes',
      },
      options: {
        config: o.configPaths,
        gateway: `${ns}/${o.gateway.name}`,
        identity: o.credentials.identity.uri,
        addresses: this.addresses,
        endpointHbonePort: o.endpointHbonePort,
        clusterDomain: o.clusterDomain ?? 'cluster.local',
        clusterId: o.clusterId ?? 'Kubernetes',
        accessLog: o.accessLog ?? 'errors',
        drainDeadlineMs: o.drainDeadlineMs ?? 20_000,
        defaultRetry: o.defaultRetry ?? 'istio',
      },
    };
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
    if (meshPath && this.#filters.meshConfig) {
      this.#meshText = await readFile(meshPath, 'utf8').catch(() => undefined);
      this.#meshWatch = watchFile(meshPath, () => {
        this.#meshReload = this.#meshReload.then(() => this.#reloadMeshConfig(meshPath));
      });
    }
    let bound: [HostPort, HostPort, HostPort, HostPort | undefined];
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
        bind('HBONE', this.#opts.hbone, async (h, p) => {
          if (this.#opts.hboneAfterReady)
            await Promise.all([this.readiness.passed('certificate'), this.readiness.passed('config')]);
          return this.#server.listen(h, p, this.#opts.reusePort);
        }),
        bind('admin', this.#opts.admin, (h, p) => this.#admin.listen(h, p)),
        bind('metrics', this.#opts.metrics, (h, p) => this.#metricsServer.listen(h, p)),
        this.#opts.ready
          ? bind('readiness', this.#opts.ready, (h, p) => this.#ready.listen(h, p))
          : undefined,
      ]);
    } catch (err) {
      // Whatever did bind, and the config watcher, would keep a failed process alive.
      await this.close();
      throw err;
    }
    const [hbone, admin, metrics, ready] = bound;
    this.addresses = { hbone, admin, metrics, ...(ready ? { ready } : {}) };
    this.readiness.pass('listeners');
    this.heap.start();
    // A worker's line is not the replica's: its primary says "waypoint listening" once all listen.
    this.#log.info(this.#opts.reusePort ? 'worker listening' : 'waypoint listening', {
      gateway: `${this.#opts.gateway.namespace}/${this.#opts.gateway.name}`,
      identity: this.#opts.credentials.identity.uri,
      hbone: formatAuthority(hbone.ip, hbone.port),
      admin: formatAuthority(admin.ip, admin.port),
      metrics: formatAuthority(metrics.ip, metrics.port),
      ...(ready ? { ready: formatAuthority(ready.ip, ready.port) } : {}),
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
    this.heap.stop();
    this.#config.close();
    this.#meshWatch?.close();
    await Promise.all([
      this.#server.close(),
      this.#admin.close(),
      this.#metricsServer.close(),
      this.#ready.close(),
      this.#http1.close(),
    ]);
    this.#http2.close();
    this.#hboneClient.close();
    this.#picker.close();
    await this.#filters.close();
    await this.tracing.close();
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

  /** A mesh config from the configuration source: the filters' part and tracing's, for the next compile. */
  #applyMeshText(text: string | undefined): string | undefined {
    const checked = this.#checkMeshText(text);
    if (checked === undefined || 'error' in checked) return checked?.error;
    this.#log.info('mesh config: applied', checked.commit());
    return undefined;
  }

  /**
   * The filters check a mesh config text, then tracing reads its providers; `commit` applies both.
   * Undefined when no filter reads a mesh config (explicit factories).
   */
  #checkMeshText(text: string | undefined): MeshConfigCheck | undefined {
    const filters = this.#filters.meshConfig?.(text);
    if (filters === undefined || 'error' in filters) return filters;
    let tracingProviders: OtlpProvider[];
    try {
      tracingProviders = text === undefined ? [] : parseTracingProviders(text);
    } catch (err) {
      return { error: (err as Error).message };
    }
    return {
      commit: () => {
        this.#tracingProviders = tracingProviders;
        return filters.commit();
      },
    };
  }

  /** Reconfigures tracing when the Telemetry policy or the providers changed (`opts.tracing` pins it). */
  #applyTracing(snapshot: Snapshot): void {
    if (this.#opts.tracing) return;
    const policy = (snapshot.filters[TELEMETRY] ?? {}) as TracingPolicy;
    const key = JSON.stringify([policy, this.#tracingProviders]);
    if (key === this.#tracingKey) return;
    this.#tracingKey = key;
    const { settings, problem } = tracingSettings(policy, this.#tracingProviders, process.env);
    if (problem) this.#log.warn(`tracing: ${problem}; using OTEL_* if set`);
    this.tracing.configure(settings);
    this.#log.info(settings.exporter ? 'tracing: on' : 'tracing: off', {
      ...(settings.exporter ? { sampling_percent: settings.samplingPercent } : {}),
    });
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
    const checked = this.#checkMeshText(text);
    if (checked === undefined) return;
    if ('error' in checked) {
      this.#log.error('mesh config: reload failed, keeping the ext_authz providers in force', {
        file: path,
        error: checked.error,
      });
      return;
    }
    this.#meshText = text;
    const applied = checked.commit();
    try {
      const snapshot = await this.#config.recompile();
      this.#log.info('mesh config: reloaded', { file: path, ...applied });
      this.#applySnapshot(snapshot);
    } catch (err) {
      this.metrics.configReloads.labels('failed').inc();
      this.#log.error('config: recompile after the mesh config reload failed', { error: String(err) });
    }
  }

  #applyResult(result: Awaited<ReturnType<ConfigSource['load']>>): void {
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
    this.metrics.hosts.retain(configuredHosts(snapshot));
    this.#applyTracing(snapshot);
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
    // Binding and snapshot are looked up again on every read (src/proxy/live-tunnel.ts).
    const tunnel = new LiveTunnel(
      { snapshot, binding, serviceKey: snapshot.services.has(key) ? key : undefined },
      {
        peer: req.peer,
        source: req.source,
        destination: req.authority,
        sourceWorkload: this.metrics.peers.source({
          baggage: req.headers.baggage as string | undefined,
          peer: req.peer,
          ip: req.source.ip,
          pods: snapshot.pods,
        }),
      },
      this.#currentSnapshot,
    );
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

/** Every endpoint address of the snapshot, for pruning per-host counters. */
function configuredHosts(snapshot: Snapshot): Set<string> {
  const out = new Set<string>();
  for (const b of snapshot.services.values()) for (const e of b.endpoints) out.add(hostKey(e));
  return out;
}

/** Heap-based shedding, logged when it starts and ends. */
function heapShedder(opts: WaypointOptions, limits: OverloadLimits): HeapShedder {
  return new HeapShedder({
    highWater: limits.heapHighWater,
    lowWater: limits.heapLowWater,
    maxBytes: limits.heapMaxBytes,
    intervalMs: limits.heapIntervalMs,
    ...(opts.heapReader ? { read: opts.heapReader } : {}),
    onChange: (shedding, ratio) =>
      opts.log.warn(shedding ? 'overload: heap above high water, shedding' : 'overload: heap recovered', {
        heap_ratio: Number(ratio.toFixed(3)),
        high_water: limits.heapHighWater,
        low_water: limits.heapLowWater,
      }),
  });
}

/** The waypoint's Istio tracing tags: its Gateway as canonical service, Envoy's node id form. */
function tracingIdentity(opts: WaypointOptions) {
  const { name, namespace } = opts.gateway;
  const domain = opts.clusterDomain ?? 'cluster.local';
  const pod = process.env.POD_NAME ?? name;
  return {
    canonicalService: name,
    namespace,
    meshId: process.env.ISTIO_META_MESH_ID ?? domain,
    nodeId: `waypoint~${process.env.INSTANCE_IP ?? '127.0.0.1'}~${pod}.${namespace}~${namespace}.svc.${domain}`,
  };
}
