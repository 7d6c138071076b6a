// `run --controller`: the waypoint's configuration from the controller's stream. Documents go into
// the same ResourceStore as files do, so validation, "a bad resource is rejected alone and its last
// good version stays", and compilation are exactly those of FileConfigSource. Fail-static: when the
// stream ends, the configuration in force stays and the source reconnects with capped back-off.

import * as grpc from '@grpc/grpc-js';
import type { CompileInput, FilterCompiler } from '../../config/compile.ts';
import type { LoadedDocument } from '../../config/load.ts';
import type { Snapshot } from '../../config/model.ts';
import type { Resource } from '../../config/resource.ts';
import { SnapshotSeries } from '../../config/snapshot-series.ts';
import type { ConfigSource, ConfigSourceInput, UpdateResult } from '../../config/source.ts';
import { ResourceStore, type UpdateReport } from '../../config/store.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { CONFIG_STREAM_SERVICE, type Push, SUBSCRIBE_PATH, type WaypointMessage } from './protocol.ts';
import { channelCredentials, channelOptions } from './tls.ts';

export interface ControllerSourceOptions extends CompileInput {
  /** Applies the mesh config's `istio` ConfigMap when it comes in the slice (ConfigSourceInput). */
  readonly applyMeshConfig?: ConfigSourceInput['applyMeshConfig'];
  /** The controller, HOST:PORT (a name, an IPv4 address or a [bracketed] IPv6 one). */
  readonly address: string;
  /** The SPIFFE ID the controller must present, exactly. */
  readonly identity: string;
  readonly credentials: Credentials;
  readonly log: Logger;
  /** Who this process is (pod name), for the controller's logs. */
  readonly node?: string;
  readonly filterCompilers?: Readonly<Record<string, FilterCompiler>>;
  readonly backoff?: BackoffOptions;
}

const NOTHING_YET: UpdateReport = {
  changed: false,
  applied: 0,
  rejected: [],
  warnings: [],
  ignoredKinds: {},
};

export class ControllerConfigSource implements ConfigSource {
  readonly #opts: ControllerSourceOptions;
  /** `controller HOST:PORT`: the origin every rejection message starts with. */
  readonly #origin: string;
  readonly #store = new ResourceStore();
  readonly #backoff: Backoff;
  /** The documents as the controller sent them, by key (a bad one too: the store decides). */
  #docs = new Map<string, unknown>();
  readonly #snapshots: SnapshotSeries;
  /** The controller's version last applied; undefined before the first full snapshot. */
  #applied: string | undefined;
  #connected = false;
  #lastError: string | undefined;
  #identityProblem: string | undefined;
  /** The mesh config ConfigMap (as JSON) last applied; undefined: none. */
  #meshText: string | undefined;
  #client: grpc.Client | undefined;
  #call: grpc.ClientDuplexStream<WaypointMessage, Push> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onUpdate: ((r: UpdateResult) => void) | undefined;
  #onError: ((err: unknown) => void) | undefined;
  #closed = false;

  constructor(opts: ControllerSourceOptions) {
    this.#opts = opts;
    this.#snapshots = new SnapshotSeries(opts, opts.filterCompilers);
    this.#origin = `controller ${opts.address}`;
    this.#backoff = new Backoff(opts.backoff);
  }

  get current(): Snapshot | undefined {
    return this.#snapshots.current;
  }

  /** The controller's version in force, if any. */
  get appliedVersion(): string | undefined {
    return this.#applied;
  }

  /** Before the first full snapshot there is nothing to load: the stream brings it. */
  load(): Promise<UpdateResult> {
    if (this.#applied === undefined) return Promise.resolve({ snapshot: undefined, report: NOTHING_YET });
    return Promise.resolve(this.#update([]));
  }

  recompile(): Promise<Snapshot> {
    if (this.#applied === undefined)
      return Promise.reject(new Error('no configuration from the controller yet'));
    return Promise.resolve(this.#compile());
  }

  /** Connects, and hands every push's result to onUpdate; onError hears a compile that failed. */
  watch(onUpdate: (r: UpdateResult) => void, onError?: (err: unknown) => void): void {
    this.#onUpdate = onUpdate;
    this.#onError = onError;
    if (!this.#client && !this.#timer) this.#connect();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    // Closing the channel leaves a running call open: cancel it, or it keeps the process alive.
    this.#call?.cancel();
    this.#client?.close();
    this.#client = undefined;
  }

  get resources(): readonly Resource[] {
    return this.#store.resources();
  }

  describe(): Readonly<Record<string, unknown>> {
    return {
      type: 'controller',
      address: this.#opts.address,
      identity: this.#opts.identity,
      connected: this.#connected,
      version: this.#applied ?? null,
      snapshotVersion: this.#snapshots.current?.version ?? null,
      documents: this.#docs.size,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  #connect(): void {
    if (this.#closed) return;
    this.#timer = undefined;
    this.#identityProblem = undefined;
    const host = hostOf(this.#opts.address);
    const creds = channelCredentials(this.#opts.credentials, this.#opts.identity, (p) => {
      this.#identityProblem = p;
    });
    const client = new grpc.Client(this.#opts.address, creds, channelOptions(host));
    this.#client = client;
    const method = CONFIG_STREAM_SERVICE.Subscribe!;
    const call = client.makeBidiStreamRequest(
      SUBSCRIBE_PATH,
      method.requestSerialize,
      method.responseDeserialize,
    ) as grpc.ClientDuplexStream<WaypointMessage, Push>;
    this.#call = call;
    call.on('data', (push: Push) => this.#onPush(push, call));
    // Every end, clean or not, comes with a status; 'error' only repeats it.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => this.#ended(client, status));
    const { namespace, name } = this.#opts.gateway;
    call.write({ hello: { gateway: `${namespace}/${name}`, node: this.#opts.node ?? '' } });
  }

  #ended(client: grpc.Client, status: grpc.StatusObject): void {
    client.close();
    if (client !== this.#client || this.#closed) return;
    this.#client = undefined;
    this.#connected = false;
    const why = this.#identityProblem ?? `${grpc.status[status.code]}: ${status.details}`;
    this.#lastError = why;
    const delay = this.#backoff.delay();
    const refused = this.#identityProblem !== undefined || status.code === grpc.status.PERMISSION_DENIED;
    this.#opts.log[refused ? 'error' : 'warn'](
      'controller: stream ended, keeping the configuration in force',
      {
        controller: this.#opts.address,
        error: why,
        version: this.#applied ?? null,
        retry_in_ms: delay,
      },
    );
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #onPush(push: Push, call: grpc.ClientDuplexStream<WaypointMessage, Push>): void {
    if (this.#closed) return;
    const problems = this.#merge(push);
    let result: UpdateResult;
    try {
      result = this.#update(problems);
    } catch (err) {
      this.#onError?.(err);
      call.write({
        ack: { version: push.version, rejected: [`${this.#origin}: compile failed: ${String(err)}`] },
      });
      return;
    }
    if (push.full) this.#fullReceived(push);
    this.#applied = push.version;
    this.#onUpdate?.(result);
    call.write({ ack: { version: push.version, rejected: result.report.rejected.map((m) => m.message) } });
  }

  #fullReceived(push: Push): void {
    this.#backoff.reset();
    this.#connected = true;
    this.#lastError = undefined;
    this.#opts.log.info('controller: connected, full snapshot received', {
      controller: this.#opts.address,
      version: push.version,
      documents: push.upserts.length,
    });
  }

  /** Applies a push to the documents; returns a message per document that is not JSON (it is skipped). */
  #merge(push: Push): string[] {
    const docs = push.full ? new Map<string, unknown>() : this.#docs;
    for (const key of push.removes) docs.delete(key);
    const problems: string[] = [];
    for (const u of push.upserts) {
      try {
        docs.set(u.key, JSON.parse(u.json.toString('utf8')));
      } catch (err) {
        problems.push(`${this.#origin}: ${u.key}: not a JSON document: ${(err as Error).message}`);
        // A full snapshot replaces the map: a bad document keeps what this key had before.
        if (push.full && this.#docs.has(u.key)) docs.set(u.key, this.#docs.get(u.key));
      }
    }
    this.#docs = docs;
    return problems;
  }

  /** The store from the documents in hand, then a snapshot if what is in force changed. */
  #update(problems: readonly string[]): UpdateResult {
    const documents: LoadedDocument[] = [...this.#docs.values()].map((value) => ({
      origin: this.#origin,
      file: this.#origin,
      value,
    }));
    const report = this.#store.update({ documents, fileErrors: [], files: [] });
    const mesh = this.#syncMeshConfig();
    const rejected = [
      ...[...problems, ...(mesh.problem ? [mesh.problem] : [])].map((message) => ({
        severity: 'error' as const,
        message,
        origin: this.#origin,
      })),
      ...report.rejected,
    ];
    const changed = report.changed || mesh.changed;
    return { snapshot: changed ? this.#compile() : undefined, report: { ...report, changed, rejected } };
  }

  /**
   * The mesh config is the ConfigMap `istio` (of the root namespace: the only one the controller
   * sends). A bad one is reported, and the providers in force stay.
   */
  #syncMeshConfig(): { changed: boolean; problem?: string } {
    const apply = this.#opts.applyMeshConfig;
    if (!apply) return { changed: false };
    const key = [...this.#docs.keys()].find((k) => k.startsWith('/ConfigMap/') && k.endsWith('/istio'));
    const text = key === undefined ? undefined : JSON.stringify(this.#docs.get(key));
    if (text === this.#meshText) return { changed: false };
    const problem = apply(text);
    if (problem !== undefined) {
      const what = `ConfigMap ${key?.split('/')[2]}/istio`;
      return {
        changed: false,
        problem: `${this.#origin}: ${what}: ${problem}; keeping the ext_authz providers in force`,
      };
    }
    this.#meshText = text;
    return { changed: true };
  }

  #compile(): Snapshot {
    return this.#snapshots.compile(this.#store.resources());
  }
}

/** The host part of HOST:PORT ([v6]:PORT too). */
function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

/** The controller's identity when `--controller-identity` is not given. */
export function defaultControllerIdentity(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/istio-system/sa/node-waypoint-controller`;
}

/** Checks a `--controller` value: HOST:PORT with a DNS name, an IPv4 address or a [bracketed] IPv6 one. */
export function checkControllerAddress(value: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[4]);
  if (!m || port < 1 || port > 65535)
    throw new Error(
      `expected HOST:PORT (e.g. node-waypoint-controller.istio-system.svc:15012), got ${JSON.stringify(value)}`,
    );
  return value;
}

/** The Waypoint's configSource for `run --controller`. */
export function controllerConfigSource(
  opts: Omit<ControllerSourceOptions, keyof ConfigSourceInput>,
): (input: ConfigSourceInput) => ControllerConfigSource {
  return (input) => new ControllerConfigSource({ ...input, ...opts });
}
