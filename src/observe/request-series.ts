// The per-request istio_* series and waypoint_requests_total, found without building a key string
// per request. A request's children are resolved in two steps, each by lookups on values that
// already exist: its peers (source, destination and Service label objects, all interned) give a
// PeerSeries by object identity, then its route rule and response (status, gRPC status, reason,
// flags, protocol) give the children, keyed by the route's compiled string and a number packed from
// the response. So prom-client never hashes labels here, and a request allocates nothing to count.
import type { ServiceInfo } from '../../config/model.ts';
import type { Outcome } from '../pipeline/context.ts';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import type { CounterChild, HistogramChild, SeriesCounter, SeriesHistogram } from './series.ts';
import { UNKNOWN, type WorkloadLabels } from './workload-labels.ts';

/** The destination_service* labels: one shared object per distinct value set. */
export interface ServiceLabels {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
}

/** The families every request counts in (metrics.ts registers them). */
export interface RequestFamilies {
  readonly requests: SeriesCounter;
  readonly duration: SeriesHistogram;
  readonly requestBytes: SeriesHistogram;
  readonly responseBytes: SeriesHistogram;
  /** waypoint_requests_total{reason, response_code, response_flags, route} */
  readonly reasons: SeriesCounter;
}

interface RequestChildren {
  readonly requests: CounterChild;
  readonly duration: HistogramChild;
  readonly requestBytes: HistogramChild;
  readonly responseBytes: HistogramChild;
  readonly reasons: CounterChild;
}

/** Children found per label set are cached up to this many (the series themselves stay). */
const MAX_CACHED = 16384;
const MAX_SERVICES = 4096;

const REASON_INDEX = new Map<string, number>(Object.keys(REASONS).map((r, i) => [r, i]));

/**
 * The response labels packed in one number when they are the common kind (flags are the reason's
 * own, the gRPC status is empty or a canonical 0-16, the status an integer below 1000); else
 * undefined and the caller builds a string key. Distinct label sets never share a number.
 */
export function responseCode(
  status: number,
  grpcStatus: string,
  reason: Reason,
  flags: string,
  grpc: boolean,
): number | undefined {
  if (flags !== REASONS[reason].flag || !Number.isInteger(status) || status < 0 || status > 999)
    return undefined;
  const g = grpcCode(grpcStatus);
  if (g === undefined) return undefined;
  return ((REASON_INDEX.get(reason)! * 18 + g) * 2 + (grpc ? 1 : 0)) * 1000 + status;
}

/** '' → 0, '0'..'16' (as written by String(n)) → 1..17, anything else undefined. */
function grpcCode(s: string): number | undefined {
  if (s === '') return 0;
  const a = s.charCodeAt(0) - 48;
  if (s.length === 1) return a >= 0 && a <= 9 ? a + 1 : undefined;
  const b = s.charCodeAt(1) - 48;
  if (s.length === 2 && a === 1 && b >= 0 && b <= 6) return 10 + b + 1;
  return undefined;
}

/** The reporter, source and destination values every istio_* series starts with, in label order. */
export function peerValues(
  s: WorkloadLabels,
  d: WorkloadLabels,
  svc: { destinationService: string; destinationServiceName: string; destinationServiceNamespace: string },
): string[] {
  return [
    'waypoint',
    s.workload,
    s.namespace,
    s.principal,
    s.app,
    s.version,
    s.canonicalService,
    s.canonicalRevision,
    s.cluster,
    d.workload,
    d.namespace,
    d.principal,
    d.app,
    d.version,
    svc.destinationService,
    svc.destinationServiceName,
    svc.destinationServiceNamespace,
    d.canonicalService,
    d.canonicalRevision,
    d.cluster,
  ];
}

/** The series of one (source, destination, Service): every request between them counts here. */
export class PeerSeries {
  readonly #families: RequestFamilies;
  readonly #peerValues: readonly string[];
  readonly #onNew: () => void;
  /** By route rule ('' for the default route), then by response (responseCode, or a string key). */
  readonly #byRoute = new Map<string, Map<number | string, RequestChildren>>();

  constructor(families: RequestFamilies, peerValues: readonly string[], onNew: () => void) {
    this.#families = families;
    this.#peerValues = peerValues;
    this.#onNew = onNew;
  }

  /** Counts one finished request. `route`: the route rule that matched (absent: default route). */
  request(o: Outcome, flags: string, grpc: boolean, route: string | undefined): void {
    const c = this.#children(o, flags, grpc, route ?? '');
    c.requests.inc();
    c.duration.observe(o.durationMs);
    c.requestBytes.observe(o.bytesReceived);
    c.responseBytes.observe(o.bytesSent);
    c.reasons.inc();
  }

  #children(o: Outcome, flags: string, grpc: boolean, route: string): RequestChildren {
    let byResponse = this.#byRoute.get(route);
    if (!byResponse) {
      byResponse = new Map();
      this.#byRoute.set(route, byResponse);
    }
    const grpcStatus = o.grpcStatus ?? '';
    const key =
      responseCode(o.status, grpcStatus, o.reason, flags, grpc) ??
      `${o.status}|${grpcStatus}|${o.reason}|${flags}|${grpc}`;
    let c = byResponse.get(key);
    if (!c) {
      c = this.#make(o.status, grpcStatus, o.reason, flags, grpc, route);
      byResponse.set(key, c);
      this.#onNew();
    }
    return c;
  }

  #make(
    status: number,
    grpcStatus: string,
    reason: Reason,
    flags: string,
    grpc: boolean,
    route: string,
  ): RequestChildren {
    const f = this.#families;
    const values = [
      ...this.#peerValues,
      grpc ? 'grpc' : 'http',
      String(status),
      grpcStatus,
      flags,
      'mutual_tls',
    ];
    return {
      requests: f.requests.labels(...values),
      duration: f.duration.labels(...values),
      requestBytes: f.requestBytes.labels(...values),
      responseBytes: f.responseBytes.labels(...values),
      reasons: f.reasons.labels(reason, String(status), flags, route),
    };
  }
}

/**
 * PeerSeries by the identities of their three label objects, and the interned Service labels. The
 * caches are bounded: past MAX_CACHED children they start over (the series themselves stay).
 */
export class RequestSeries {
  readonly #families: RequestFamilies;
  #bySource = new WeakMap<WorkloadLabels, WeakMap<WorkloadLabels, WeakMap<ServiceLabels, PeerSeries>>>();
  #cached = 0;
  readonly #byService = new WeakMap<ServiceInfo, ServiceLabels>();
  readonly #interned = new Map<string, ServiceLabels>();
  /** No Service: by the namespace known (a workload tunnel's pod's, else `unknown`). */
  readonly #unknownIn = new Map<string, ServiceLabels>();
  readonly #onNew = (): void => {
    if (++this.#cached < MAX_CACHED) return;
    this.#bySource = new WeakMap();
    this.#cached = 0;
  };

  constructor(families: RequestFamilies) {
    this.#families = families;
  }

  peers(source: WorkloadLabels, destination: WorkloadLabels, service: ServiceLabels): PeerSeries {
    let byDestination = this.#bySource.get(source);
    if (!byDestination) {
      byDestination = new WeakMap();
      this.#bySource.set(source, byDestination);
    }
    let byService = byDestination.get(destination);
    if (!byService) {
      byService = new WeakMap();
      byDestination.set(destination, byService);
    }
    let p = byService.get(service);
    if (!p) {
      const values = peerValues(source, destination, {
        destinationService: service.hostname,
        destinationServiceName: service.name,
        destinationServiceNamespace: service.namespace,
      });
      p = new PeerSeries(this.#families, values, this.#onNew);
      byService.set(service, p);
    }
    return p;
  }

  /** The Service's labels; no Service: `unknown`, with `namespace` (a workload tunnel's pod's) if known. */
  service(svc: ServiceInfo | undefined, namespace: string = UNKNOWN): ServiceLabels {
    if (!svc) {
      let u = this.#unknownIn.get(namespace);
      if (!u) {
        u = this.#intern(UNKNOWN, UNKNOWN, namespace);
        if (this.#unknownIn.size >= MAX_SERVICES) this.#unknownIn.clear();
        this.#unknownIn.set(namespace, u);
      }
      return u;
    }
    let l = this.#byService.get(svc);
    if (!l) {
      l = this.#intern(svc.hostname, svc.name, svc.namespace);
      this.#byService.set(svc, l);
    }
    return l;
  }

  #intern(hostname: string, name: string, namespace: string): ServiceLabels {
    const key = `${hostname}\u0000${name}\u0000${namespace}`;
    let l = this.#interned.get(key);
    if (!l) {
      if (this.#interned.size >= MAX_SERVICES) this.#interned.clear();
      l = Object.freeze({ hostname, name, namespace });
      this.#interned.set(key, l);
    }
    return l;
  }
}
