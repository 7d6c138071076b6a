// One kind's list/watch loop, as client-go's Reflector does it: a paginated LIST, then a WATCH from
// the list's resourceVersion with bookmarks; re-watch from the last RV when the server ends a
// watch; re-list on 410 Gone (HTTP status or ERROR event, or an expired continue token); restart
// with capped back-off on any other error; and reconnect a watch that stays silent too long (a
// half-open TCP connection sends nothing and reports nothing). It never stops until stop(): every
// restart is a log line and a metric.
import { HttpMethod, type KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { fetch } from 'undici';
import { Backoff } from './backoff.ts';
import { type DocumentKey, documentKey, type KubeDocument } from './slice-source.ts';
import { collectionPath, type WatchedKind } from './watched-kinds.ts';

export interface ReflectorHandler {
  upsert(doc: KubeDocument): void;
  remove(key: DocumentKey, doc: KubeDocument): void;
  /** The first full list is in the cache (or the kind's CRD is absent). */
  synced(): void;
}

export type RestartReason = 'watch_ended' | 'gone' | 'stalled' | 'error' | 'not_installed';

export interface ReflectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly kind: WatchedKind;
  readonly handler: ReflectorHandler;
  readonly log?: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;
  readonly onRestart?: (reason: RestartReason) => void;
  readonly onRelist?: () => void;
  /** Objects per LIST page (default 500). */
  readonly pageSize?: number;
  /** A watch silent for longer than this is reconnected (default 90 s; bookmarks come ~every minute). */
  readonly stallTimeoutMs?: number;
  /** Asked of the server per watch, so watches end and restart from the last RV (default 300-600 s). */
  readonly watchTimeoutSeconds?: () => number;
  readonly backoff?: Backoff;
  /** How often to look again for a CRD that is not installed (default 30 s). */
  readonly absentRetryMs?: number;
}

class GoneError extends Error {}

export class Reflector {
  readonly #o: ReflectorOptions;
  readonly #cache = new Map<DocumentKey, KubeDocument>();
  readonly #backoff: Backoff;
  #rv: string | undefined;
  #stopped = false;
  #synced = false;
  #absentLogged = false;
  #abort: AbortController | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: ReflectorOptions) {
    this.#o = opts;
    this.#backoff = opts.backoff ?? new Backoff({ initialMs: 500, maxMs: 30_000 });
  }

  get kind(): WatchedKind {
    return this.#o.kind;
  }
  get synced(): boolean {
    return this.#synced;
  }
  get size(): number {
    return this.#cache.size;
  }
  get resourceVersion(): string | undefined {
    return this.#rv;
  }
  values(): IterableIterator<KubeDocument> {
    return this.#cache.values();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (this.#rv === undefined) await this.#list();
        await this.#watch();
        this.#restart(
          'watch_ended',
          'the server ended the watch; watching again from the last resourceVersion',
        );
      } catch (err) {
        if (this.#stopped) return;
        await this.#recover(err);
      }
    }
  }

  async #recover(err: unknown): Promise<void> {
    const status = statusOf(err);
    if (err instanceof GoneError || status === 410) {
      this.#rv = undefined;
      this.#o.onRelist?.();
      this.#restart('gone', `410 Gone: listing again (${message(err)})`);
      return;
    }
    if (status === 404 && this.#o.kind.crd) {
      if (!this.#absentLogged) this.#log('info', 'not installed (no CRD); skipped until it appears');
      this.#absentLogged = true;
      this.#o.onRestart?.('not_installed');
      this.#markSynced();
      await this.#sleep(this.#o.absentRetryMs ?? 30_000);
      return;
    }
    if (isTimeout(err)) {
      this.#restart('stalled', `watch silent for ${this.#stallMs()} ms: reconnecting`);
      return;
    }
    const delay = this.#backoff.delay();
    this.#restart('error', `${message(err)}; retrying in ${delay} ms`);
    await this.#sleep(delay);
  }

  #restart(reason: RestartReason, text: string): void {
    this.#o.onRestart?.(reason);
    this.#log(reason === 'watch_ended' ? 'info' : 'warn', text, { reason });
  }

  #log(level: 'info' | 'warn', text: string, fields: Record<string, unknown> = {}): void {
    this.#o.log?.(level, `reflector ${this.#o.kind.kind}: ${text}`, { kind: this.#o.kind.kind, ...fields });
  }

  #stallMs(): number {
    return this.#o.stallTimeoutMs ?? 90_000;
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    this.#o.handler.synced();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Every page, then the cache replaced at once: removes for what is gone, upserts for what changed. */
  async #list(): Promise<void> {
    const fresh = new Map<DocumentKey, KubeDocument>();
    let token: string | undefined;
    let rv = '';
    for (;;) {
      const page = await this.#getPage(token);
      if (page === 'expired') {
        this.#o.onRelist?.();
        this.#log('warn', 'continue token expired (410): listing again from the start');
        fresh.clear();
        token = undefined;
        continue;
      }
      if (token === undefined) rv = page.metadata?.resourceVersion ?? '';
      for (const item of page.items ?? []) this.#trimInto(fresh, page, item);
      token = page.metadata?.continue || undefined;
      if (token === undefined || this.#stopped) break;
    }
    this.#replace(fresh);
    this.#rv = rv;
    this.#absentLogged = false;
    this.#markSynced();
  }

  #trimInto(into: Map<DocumentKey, KubeDocument>, page: ListPage, item: KubeDocument): void {
    // List items carry neither apiVersion nor kind on a real server.
    const listKind = page.kind?.replace(/List$/, '') ?? this.#o.kind.kind;
    const doc = this.#o.kind.trim({ ...item, apiVersion: page.apiVersion ?? '', kind: listKind });
    into.set(documentKey(doc), doc);
  }

  #replace(fresh: Map<DocumentKey, KubeDocument>): void {
    for (const [key, old] of this.#cache) {
      if (!fresh.has(key)) {
        this.#cache.delete(key);
        this.#o.handler.remove(key, old);
      }
    }
    for (const [key, doc] of fresh) {
      if (this.#cache.get(key)?.metadata.resourceVersion === doc.metadata.resourceVersion) continue;
      this.#cache.set(key, doc);
      this.#o.handler.upsert(doc);
    }
  }

  async #getPage(token: string | undefined): Promise<ListPage | 'expired'> {
    const url = new URL(this.#server() + collectionPath(this.#o.kind));
    url.searchParams.set('limit', String(this.#o.pageSize ?? 500));
    if (token) url.searchParams.set('continue', token);
    // resourceVersion=0 lets the API server answer from its watch cache instead of etcd.
    else url.searchParams.set('resourceVersion', '0');
    if (this.#o.kind.fieldSelector) url.searchParams.set('fieldSelector', this.#o.kind.fieldSelector);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.#o.kubeConfig.applySecurityAuthentication(ctx);
    this.#abort = new AbortController();
    const timer = setTimeout(() => this.#abort?.abort(new Error('LIST timed out')), 120_000);
    try {
      const res = await fetch(url, {
        headers: ctx.getHeaders(),
        dispatcher: ctx.getDispatcher() as never,
        signal: this.#abort.signal,
      });
      const body = await res.text();
      if (res.status === 410 && token) return 'expired';
      if (res.status !== 200) throw httpError(res.status, body);
      return JSON.parse(body) as ListPage;
    } finally {
      clearTimeout(timer);
    }
  }

  #server(): string {
    const cluster = this.#o.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return cluster.server.replace(/\/$/, '');
  }

  /** Resolves when the server ends the watch; rejects on 410, a stall or any error. */
  #watch(): Promise<void> {
    const watch = new Watch(this.#o.kubeConfig);
    // The library's inactivity timer (re-armed on every chunk) is our stall watchdog; the field is
    // public in its JavaScript and private only in its typings (2.0.1).
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = this.#stallMs();
    const timeout = this.#o.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
    const query: Record<string, string | number | boolean> = {
      resourceVersion: this.#rv ?? '',
      allowWatchBookmarks: true,
      timeoutSeconds: timeout,
    };
    if (this.#o.kind.fieldSelector) query.fieldSelector = this.#o.kind.fieldSelector;
    return new Promise<void>((resolve, reject) => {
      let failure: unknown;
      const onEvent = (type: string, obj: KubeDocument): void => {
        if (failure) return;
        failure = this.#apply(type, obj);
        if (failure) void started.then((c) => c?.abort());
      };
      const done = (err: unknown): void => (failure || err ? reject(failure ?? err) : resolve());
      const started = watch.watch(collectionPath(this.#o.kind), query, onEvent, done).catch((err) => {
        reject(err);
        return undefined;
      });
      void started.then((controller) => {
        this.#abort = controller;
        if (this.#stopped) controller?.abort();
      });
    });
  }

  /** One watch event into the cache; returns an error to end the watch with. */
  #apply(type: string, obj: KubeDocument): Error | undefined {
    if (type === 'ERROR') {
      const status = obj as unknown as { code?: number; message?: string };
      return status.code === 410
        ? new GoneError(status.message ?? 'Gone')
        : httpError(status.code ?? 500, status.message ?? '');
    }
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    this.#backoff.reset();
    if (type === 'BOOKMARK') return undefined;
    const doc = this.#o.kind.trim(obj);
    const key = documentKey(doc);
    if (type === 'DELETED') {
      if (this.#cache.delete(key)) this.#o.handler.remove(key, doc);
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      this.#cache.set(key, doc);
      this.#o.handler.upsert(doc);
    }
    return undefined;
  }
}

interface ListPage {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeDocument[];
}

function httpError(status: number, body: string): Error {
  let text = body.slice(0, 300);
  try {
    text = (JSON.parse(body) as { message?: string }).message ?? text;
  } catch {
    // not JSON: keep the text
  }
  return Object.assign(new Error(`HTTP ${status}: ${text}`), { statusCode: status });
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

function isTimeout(err: unknown): boolean {
  return (err as { name?: string })?.name === 'TimeoutError';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
