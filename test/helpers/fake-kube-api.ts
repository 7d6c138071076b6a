// A fake Kubernetes API server (node:http) that speaks the list/watch protocol the way
// kube-apiserver does (API concepts: "Efficient detection of changes", "Retrieving large results
// sets in chunks"): LIST with resourceVersion and limit/continue, WATCH from a resourceVersion with
// bookmarks and timeoutSeconds, 410 Gone as a status and as an ERROR event, discovery for CRD
// groups, and fault hooks. Tests drive it with the mutation API; clients talk real HTTP to it.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** A custom resource: served only while its CRD is installed. */
  readonly crd?: boolean;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [field: string]: unknown;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface LoggedEvent {
  readonly rv: number;
  readonly type: EventType;
  readonly kindKey: string;
  readonly object: KubeObject;
}

interface OpenWatch {
  readonly kindKey: string;
  readonly filter: (o: KubeObject) => boolean;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  stalled: boolean;
}

/** What a test may make the server do instead of answering normally. */
export interface FaultHooks {
  /** Answer a request with this status (and a Status body) instead; return undefined to pass. */
  request?: (req: { method: string; path: string; query: URLSearchParams }) => number | undefined;
  /** New watches answer 200 and then send nothing, ever. */
  stallWatches?: boolean;
  /** A watch from a too-old RV gets HTTP 410 (true) instead of 200 + an ERROR event (default). */
  goneAsHttpStatus?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
}

/** The kinds node-waypoint's controller reads; tests may add more. */
export const STANDARD_KINDS: readonly FakeKind[] = [
  { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
  },
  ...crds('gateway.networking.k8s.io', 'v1', [
    ['Gateway', 'gateways', true],
    ['GatewayClass', 'gatewayclasses', false],
    ['HTTPRoute', 'httproutes', true],
    ['GRPCRoute', 'grpcroutes', true],
  ]),
  ...crds('gateway.networking.k8s.io', 'v1alpha2', [['TCPRoute', 'tcproutes', true]]),
  ...crds('gateway.networking.k8s.io', 'v1beta1', [['ReferenceGrant', 'referencegrants', true]]),
  ...crds('networking.istio.io', 'v1', [
    ['ServiceEntry', 'serviceentries', true],
    ['VirtualService', 'virtualservices', true],
    ['DestinationRule', 'destinationrules', true],
  ]),
  ...crds('security.istio.io', 'v1', [
    ['AuthorizationPolicy', 'authorizationpolicies', true],
    ['RequestAuthentication', 'requestauthentications', true],
  ]),
  ...crds('waypoint.node-waypoint.io', 'v1alpha1', [
    ['BackendTrafficPolicy', 'backendtrafficpolicies', true],
  ]),
];

function crds(group: string, version: string, list: [string, string, boolean][]): FakeKind[] {
  return list.map(([kind, plural, namespaced]) => ({ group, version, kind, plural, namespaced, crd: true }));
}

const kindKeyOf = (group: string, kind: string): string => `${group}/${kind}`;
const objectKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const apiVersionOf = (k: FakeKind): string => (k.group ? `${k.group}/${k.version}` : k.version);

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  faults: FaultHooks = {};
  private readonly server: Server;
  private readonly kinds = new Map<string, FakeKind>();
  private readonly installed = new Set<string>();
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly log: LoggedEvent[] = [];
  private readonly watches = new Set<OpenWatch>();
  private readonly pages = new Map<string, { rv: number; items: KubeObject[] }>();
  private rv = 100;
  /** RVs below this are gone from history: watches and continue tokens from them get 410. */
  private compactedRV = 0;

  constructor(kinds: readonly FakeKind[] = STANDARD_KINDS, opts: { crdsInstalled?: boolean } = {}) {
    for (const k of kinds) {
      const key = kindKeyOf(k.group, k.kind);
      this.kinds.set(key, k);
      this.objects.set(key, new Map());
      if (!k.crd || opts.crdsInstalled !== false) this.installed.add(key);
    }
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async listen(host = '127.0.0.1', port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    return `http://${addr.address}:${addr.port}`;
  }

  get url(): string {
    const addr = this.server.address() as AddressInfo;
    return `http://${addr.address}:${addr.port}`;
  }

  async close(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The current resourceVersion of the whole store (etcd's revision). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  // ---- mutation API ----

  create(obj: KubeObject): KubeObject {
    const { kindKey, map } = this.kindOf(obj);
    if (map.has(objectKey(obj))) throw new Error(`${obj.kind} ${objectKey(obj)} already exists`);
    return this.store(kindKey, map, 'ADDED', obj);
  }

  update(obj: KubeObject): KubeObject {
    const { kindKey, map } = this.kindOf(obj);
    if (!map.has(objectKey(obj))) throw new Error(`${obj.kind} ${objectKey(obj)} not found`);
    return this.store(kindKey, map, 'MODIFIED', obj);
  }

  /** Create or update. */
  apply(obj: KubeObject): KubeObject {
    const { map } = this.kindOf(obj);
    return map.has(objectKey(obj)) ? this.update(obj) : this.create(obj);
  }

  delete(
    obj: Pick<KubeObject, 'apiVersion' | 'kind'> & { metadata: { name: string; namespace?: string } },
  ): void {
    const { kindKey, map } = this.kindOf(obj as KubeObject);
    const key = objectKey(obj as KubeObject);
    const old = map.get(key);
    if (!old) throw new Error(`${obj.kind} ${key} not found`);
    map.delete(key);
    this.rv++;
    const gone = { ...old, metadata: { ...old.metadata, resourceVersion: String(this.rv) } };
    this.emit({ rv: this.rv, type: 'DELETED', kindKey, object: gone });
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): KubeObject | undefined {
    return this.kindOf({ apiVersion, kind }).map.get(`${namespace}/${name}`);
  }

  /** Forget history up to now: watches and continue tokens from an older RV get 410 Gone. */
  compact(): void {
    this.compactedRV = this.rv;
    this.log.length = 0;
  }

  /** Sends a BOOKMARK at the current RV on every watch that asked for them. */
  bookmark(): void {
    for (const w of this.watches) if (w.bookmarks) this.write(w, this.bookmarkEvent(w.kindKey));
  }

  /** Ends every open watch, as an API server does on its own timeout or a restart. */
  closeWatches(): void {
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      w.res.end();
    }
  }

  /** Makes every open watch silent from now on (bytes stop; the connection stays open). */
  stallOpenWatches(): void {
    for (const w of this.watches) w.stalled = true;
  }

  /** Sends an ERROR 410 event on every open watch and ends it (a too-old RV after compaction). */
  goneOpenWatches(): void {
    for (const w of [...this.watches]) {
      this.write(w, { type: 'ERROR', object: goneStatus('too old resource version') });
      this.watches.delete(w);
      w.res.end();
    }
  }

  installCrd(group: string, kind: string): void {
    this.installed.add(kindKeyOf(group, kind));
  }

  uninstallCrd(group: string, kind: string): void {
    const key = kindKeyOf(group, kind);
    this.installed.delete(key);
    for (const w of [...this.watches]) {
      if (w.kindKey !== key) continue;
      this.watches.delete(w);
      w.res.end();
    }
  }

  countRequests(pred: (r: RecordedRequest) => boolean): number {
    return this.requests.filter(pred).length;
  }

  // ---- internals: storage ----

  private kindOf(obj: Pick<KubeObject, 'apiVersion' | 'kind'>): {
    kindKey: string;
    map: Map<string, KubeObject>;
  } {
    const slash = obj.apiVersion.lastIndexOf('/');
    const kindKey = kindKeyOf(slash < 0 ? '' : obj.apiVersion.slice(0, slash), obj.kind);
    const map = this.objects.get(kindKey);
    if (!map) throw new Error(`fake API server: unknown kind ${kindKey}`);
    return { kindKey, map };
  }

  private store(kindKey: string, map: Map<string, KubeObject>, type: EventType, obj: KubeObject): KubeObject {
    this.rv++;
    const uid = map.get(objectKey(obj))?.metadata.uid ?? obj.metadata.uid ?? randomUUID();
    const stored = structuredClone({
      ...obj,
      metadata: { ...obj.metadata, uid, resourceVersion: String(this.rv) },
    });
    map.set(objectKey(stored), stored);
    this.emit({ rv: this.rv, type, kindKey, object: stored });
    return stored;
  }

  private emit(event: LoggedEvent): void {
    this.log.push(event);
    for (const w of this.watches) {
      if (w.kindKey === event.kindKey && w.filter(event.object)) {
        this.write(w, { type: event.type, object: event.object });
      }
    }
  }

  private write(w: OpenWatch, event: unknown): void {
    if (w.stalled || w.res.writableEnded) return;
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  private bookmarkEvent(kindKey: string): unknown {
    const k = this.kinds.get(kindKey) as FakeKind;
    return {
      type: 'BOOKMARK',
      object: { apiVersion: apiVersionOf(k), kind: k.kind, metadata: { resourceVersion: String(this.rv) } },
    };
  }

  // ---- internals: HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const record = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams };
    this.requests.push(record);
    const injected = this.faults.request?.(record);
    if (injected !== undefined) return void sendStatus(res, injected, `injected fault ${injected}`);
    if (record.method !== 'GET')
      return void sendStatus(res, 405, 'the fake API server is read-only over HTTP');
    const discovery = this.discovery(url.pathname);
    if (discovery !== undefined) return void sendJson(res, 200, discovery);
    const route = this.route(url.pathname);
    if (!route)
      return void sendStatus(res, 404, `the server could not find the requested resource (${url.pathname})`);
    const filter = selector(route.namespace, url.searchParams);
    const watching = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    if (watching) this.serveWatch(req, res, route.kindKey, filter, url.searchParams);
    else this.serveList(res, route.kindKey, filter, url.searchParams);
  }

  /** /api/v1[/namespaces/NS]/PLURAL and /apis/G/V[/namespaces/NS]/PLURAL, for installed kinds. */
  private route(path: string): { kindKey: string; namespace?: string } | undefined {
    const parts = path.split('/').filter(Boolean);
    const [group, version, rest] =
      parts[0] === 'api' ? ['', parts[1], parts.slice(2)] : [parts[1] ?? '', parts[2], parts.slice(3)];
    let namespace: string | undefined;
    let plural = rest[0];
    if (rest[0] === 'namespaces' && rest.length === 3) {
      namespace = rest[1];
      plural = rest[2];
    } else if (rest.length !== 1) return undefined;
    for (const [key, k] of this.kinds) {
      if (k.group === group && k.version === version && k.plural === plural && this.installed.has(key)) {
        if (namespace !== undefined && !k.namespaced) return undefined;
        return { kindKey: key, namespace };
      }
    }
    return undefined;
  }

  /** GET /apis/G/V: an APIResourceList of the installed kinds, 404 when none is. */
  private discovery(path: string): unknown {
    const m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (!m) return undefined;
    const resources = [...this.kinds.entries()]
      .filter(([key, k]) => k.group === m[1] && k.version === m[2] && this.installed.has(key))
      .map(([, k]) => ({
        name: k.plural,
        namespaced: k.namespaced,
        kind: k.kind,
        verbs: ['get', 'list', 'watch'],
      }));
    if (resources.length === 0) return undefined;
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${m[1]}/${m[2]}`, resources };
  }

  private serveList(
    res: ServerResponse,
    kindKey: string,
    filter: (o: KubeObject) => boolean,
    q: URLSearchParams,
  ): void {
    const k = this.kinds.get(kindKey) as FakeKind;
    const requested = q.get('resourceVersion') ?? '';
    if (requested !== '' && requested !== '0' && Number(requested) < this.compactedRV) {
      return void sendStatus(
        res,
        410,
        `too old resource version: ${requested} (${this.compactedRV})`,
        'Expired',
      );
    }
    const token = q.get('continue');
    let page: { rv: number; items: KubeObject[] };
    let offset = 0;
    if (token) {
      const [id, at] = token.split(':');
      const held = this.pages.get(id ?? '');
      if (!held || held.rv < this.compactedRV) {
        return void sendStatus(
          res,
          410,
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
          'Expired',
        );
      }
      page = held;
      offset = Number(at);
    } else {
      const items = [...(this.objects.get(kindKey) as Map<string, KubeObject>).values()].filter(filter);
      items.sort((a, b) => (objectKey(a) < objectKey(b) ? -1 : objectKey(a) > objectKey(b) ? 1 : 0));
      page = { rv: this.rv, items };
    }
    const limit = Number(q.get('limit') ?? '0');
    const end = limit > 0 ? Math.min(offset + limit, page.items.length) : page.items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(page.rv) };
    if (end < page.items.length) {
      const id = token?.split(':')[0] ?? randomUUID();
      this.pages.set(id, page);
      metadata.continue = `${id}:${end}`;
      metadata.remainingItemCount = page.items.length - end;
    } else if (token) {
      this.pages.delete(token.split(':')[0] ?? '');
    }
    sendJson(res, 200, {
      apiVersion: apiVersionOf(k),
      kind: `${k.kind}List`,
      metadata,
      items: page.items.slice(offset, end),
    });
  }

  private serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    kindKey: string,
    filter: (o: KubeObject) => boolean,
    q: URLSearchParams,
  ): void {
    const from = q.get('resourceVersion') ?? '';
    const exact = from !== '' && from !== '0';
    if (exact && Number(from) < this.compactedRV && this.faults.goneAsHttpStatus) {
      return void sendStatus(res, 410, `too old resource version: ${from} (${this.compactedRV})`, 'Expired');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = {
      kindKey,
      filter,
      res,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      stalled: this.faults.stallWatches === true,
    };
    if (exact && Number(from) < this.compactedRV) {
      this.write(w, {
        type: 'ERROR',
        object: goneStatus(`too old resource version: ${from} (${this.compactedRV})`),
      });
      res.end();
      return;
    }
    if (exact) {
      for (const e of this.log) {
        if (e.rv > Number(from) && e.kindKey === kindKey && filter(e.object)) {
          this.write(w, { type: e.type, object: e.object });
        }
      }
    } else {
      // No RV: the current state as synthetic ADDED events, then changes.
      for (const o of (this.objects.get(kindKey) as Map<string, KubeObject>).values()) {
        if (filter(o)) this.write(w, { type: 'ADDED', object: o });
      }
    }
    this.watches.add(w);
    const seconds = Number(q.get('timeoutSeconds') ?? '0');
    const timer = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined;
    timer?.unref();
    const done = (): void => {
      clearTimeout(timer);
      this.watches.delete(w);
    };
    res.on('close', done);
    req.on('close', done);
  }
}

function selector(namespace: string | undefined, q: URLSearchParams): (o: KubeObject) => boolean {
  const fields = (q.get('fieldSelector') ?? '')
    .split(',')
    .filter(Boolean)
    .map((term) => term.split('='));
  return (o) => {
    if (namespace !== undefined && o.metadata.namespace !== namespace) return false;
    for (const [field, value] of fields) {
      if (field === 'metadata.name' && o.metadata.name !== value) return false;
      if (field === 'metadata.namespace' && o.metadata.namespace !== value) return false;
    }
    return true;
  };
}

function goneStatus(message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason: 'Expired', code: 410 };
}

function sendStatus(res: ServerResponse, code: number, message: string, reason?: string): void {
  sendJson(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: reason ?? (code === 404 ? 'NotFound' : 'InternalError'),
    code,
  });
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
