// The resources in force. Every document is validated on its own, so one bad object is rejected
// alone (istio/istio#36021: one bad VirtualService must not empty the routing table). A resource
// keeps its last good version when a later edit is invalid, and a file that fails to read or parse
// keeps everything it defined before; only a resource absent from every readable file is deleted.
import { resolve, sep } from 'node:path';
import { deepFreeze } from './freeze.ts';
import { type KindRegistry, kindRegistry } from './kinds/registry.ts';
import { type FileError, formatFileError, type LoadedDocument, type LoadResult } from './load.ts';
import { fieldProblems, joinProblems } from './messages.ts';
import type { ConfigMessage } from './model.ts';
import { describe, type Resource, resourceKey, splitApiVersion } from './resource.ts';

export interface UpdateReport {
  /** True when the resources in force differ from before the update (always true the first time). */
  readonly changed: boolean;
  /** Documents validated and put in force by this update (after duplicates are resolved). */
  readonly applied: number;
  /** Files that failed and documents that were invalid; each says what stays in force instead. */
  readonly rejected: readonly ConfigMessage[];
  /** Duplicates and similar: applied, but probably not what the author meant. */
  readonly warnings: readonly ConfigMessage[];
  /** Documents of kinds no one registered, counted by `Kind` (core) or `Kind.group`. */
  readonly ignoredKinds: Readonly<Record<string, number>>;
}

interface Entry {
  readonly resource: Resource;
  readonly file: string;
  /** Content plus origin: equal fingerprints mean nothing a consumer can see has changed. */
  readonly fingerprint: string;
}

type Outcome =
  | { readonly type: 'valid'; readonly key: string; readonly entry: Entry }
  | { readonly type: 'ignored'; readonly kindName: string }
  | { readonly type: 'rejected'; readonly key: string | undefined; readonly message: ConfigMessage };

export class ResourceStore {
  readonly #registry: KindRegistry;
  #inForce = new Map<string, Entry>();
  #resources: readonly Resource[] = Object.freeze([]);
  #updated = false;
  /**
   * Outcomes by document object: a source that hands the same parsed object again (the controller
   * stream keeps unchanged documents) is not validated again. Files are parsed anew on every load.
   */
  readonly #outcomes = new WeakMap<object, { readonly doc: LoadedDocument; readonly outcome: Outcome }>();

  constructor(registry: KindRegistry = kindRegistry) {
    this.#registry = registry;
  }

  /** The resources in force, sorted by key, frozen. */
  resources(): readonly Resource[] {
    return this.#resources;
  }

  /** Replaces the resources in force with what load defines, keeping last good versions (see header). */
  update(load: LoadResult): UpdateReport {
    const warnings: ConfigMessage[] = [];
    const ignoredKinds: Record<string, number> = {};
    const valid = new Map<string, Entry>();
    const invalid: Array<{ key: string | undefined; message: ConfigMessage }> = [];

    for (const doc of load.documents) {
      const outcome = this.#validateOnce(doc);
      if (outcome.type === 'ignored') {
        ignoredKinds[outcome.kindName] = (ignoredKinds[outcome.kindName] ?? 0) + 1;
      } else if (outcome.type === 'rejected') {
        invalid.push(outcome);
      } else {
        const earlier = valid.get(outcome.key);
        if (earlier) warnings.push(duplicateWarning(earlier.resource, outcome.entry.resource));
        valid.set(outcome.key, outcome.entry);
      }
    }

    const next = new Map(valid);
    const keptByFileError = new Map<FileError, number>();
    const invalidKeys = new Set(invalid.map((i) => i.key));
    for (const [key, old] of this.#inForce) {
      if (next.has(key)) continue;
      const fileError = load.fileErrors.find((e) => covers(e.path, old.file));
      if (fileError) {
        next.set(key, old);
        keptByFileError.set(fileError, (keptByFileError.get(fileError) ?? 0) + 1);
      } else if (invalidKeys.has(key)) {
        next.set(key, old);
      }
    }

    const rejected: ConfigMessage[] = load.fileErrors.map((e) => {
      const kept = keptByFileError.get(e) ?? 0;
      const suffix = kept ? `; keeping the ${plural(kept, 'resource')} previously loaded from it` : '';
      return { severity: 'error', message: formatFileError(e) + suffix, origin: e.path };
    });
    for (const { key, message } of invalid) {
      rejected.push({ ...message, message: message.message + fallbackNote(key, valid, this.#inForce) });
    }

    const changed = !this.#updated || differs(this.#inForce, next);
    this.#updated = true;
    if (changed) {
      // An unchanged resource keeps its object, so consumers may cache by identity.
      const sorted = [...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.#inForce = new Map(
        sorted.map(([key, entry]) => {
          const old = this.#inForce.get(key);
          return [key, old?.fingerprint === entry.fingerprint ? old : entry];
        }),
      );
      this.#resources = Object.freeze([...this.#inForce.values()].map((e) => e.resource));
    }
    return { changed, applied: valid.size, rejected, warnings, ignoredKinds };
  }

  #validateOnce(doc: LoadedDocument): Outcome {
    const v = doc.value;
    if (typeof v !== 'object' || v === null) return this.#validate(doc);
    const seen = this.#outcomes.get(v);
    if (seen && seen.doc.origin === doc.origin && seen.doc.file === doc.file) return seen.outcome;
    const outcome = this.#validate(doc);
    this.#outcomes.set(v, { doc, outcome });
    return outcome;
  }

  #validate(doc: LoadedDocument): Outcome {
    const { origin } = doc;
    const v = doc.value;
    if (!isRecord(v)) {
      const got = Array.isArray(v) ? 'a list' : JSON.stringify(v);
      return reject(undefined, {
        origin,
        text: `expected a Kubernetes object (a mapping with apiVersion and kind), got ${got}`,
      });
    }
    const kind = nonEmptyString(v.kind);
    const apiVersion = nonEmptyString(v.apiVersion);
    const meta = isRecord(v.metadata) ? v.metadata : {};
    const name = nonEmptyString(meta.name);
    if (!kind || !apiVersion) {
      const field = !kind ? 'kind' : 'apiVersion';
      return reject(undefined, { origin, field, text: `${field}: required`, kind, name });
    }
    const { group, version } = splitApiVersion(apiVersion);
    const def = this.#registry.lookup(group, kind);
    if (!def) return { type: 'ignored', kindName: group ? `${kind}.${group}` : kind };

    const namespace = def.namespaced ? (nonEmptyString(meta.namespace) ?? 'default') : '';
    const key = name === undefined ? undefined : resourceKey({ group, kind, namespace, name });
    const who = { origin, kind, namespace, name };

    if (def.versions && !def.versions.includes(version)) {
      const supported = def.versions.map((ver) => (group ? `${group}/${ver}` : ver)).join(', ');
      return reject(key, {
        ...who,
        field: 'apiVersion',
        text: `apiVersion: ${apiVersion} is not supported for ${kind} (supported: ${supported})`,
      });
    }
    const result = def.schema.safeParse(v, { reportInput: true });
    if (!result.success) {
      const problems = fieldProblems(result.error);
      return reject(key, {
        ...who,
        field: problems[0]?.field,
        text: joinProblems(problems, result.error.issues.length),
      });
    }
    if (name === undefined || key === undefined) {
      // The schemas require metadata.name; this guards a registered schema that forgot to.
      return reject(undefined, { ...who, field: 'metadata.name', text: 'metadata.name: required' });
    }
    const spec = deepFreeze(result.data);
    const resource: Resource = Object.freeze({ kind, group, version, namespace, name, origin, spec });
    return {
      type: 'valid',
      key,
      entry: { resource, file: doc.file, fingerprint: JSON.stringify([origin, spec]) },
    };
  }
}

interface Rejection {
  readonly origin: string;
  readonly text: string;
  readonly field?: string | undefined;
  readonly kind?: string | undefined;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
}

function reject(key: string | undefined, r: Rejection): Outcome {
  const subject = r.kind ? `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name ?? '(no name)'}: ` : '';
  const message: ConfigMessage = {
    severity: 'error',
    message: `${r.origin}: ${subject}${r.text}`,
    origin: r.origin,
    ...(r.kind === undefined ? {} : { kind: r.kind }),
    ...(r.namespace ? { namespace: r.namespace } : {}),
    ...(r.name === undefined ? {} : { name: r.name }),
    ...(r.field === undefined ? {} : { field: r.field }),
  };
  return { type: 'rejected', key, message };
}

/** What a rejected document's key resolves to instead, in words. */
function fallbackNote(
  key: string | undefined,
  valid: Map<string, Entry>,
  before: Map<string, Entry>,
): string {
  if (key === undefined) return '';
  const replacement = valid.get(key);
  if (replacement) return `; using the definition from ${replacement.resource.origin}`;
  const old = before.get(key);
  return old ? `; keeping the last good version from ${old.resource.origin}` : '';
}

function duplicateWarning(earlier: Resource, later: Resource): ConfigMessage {
  return {
    severity: 'warning',
    message: `${later.origin}: ${describe(later)} is also defined in ${earlier.origin}; using ${later.origin} (the later file in sorted order)`,
    origin: later.origin,
    kind: later.kind,
    ...(later.namespace ? { namespace: later.namespace } : {}),
    name: later.name,
  };
}

function differs(a: Map<string, Entry>, b: Map<string, Entry>): boolean {
  if (a.size !== b.size) return true;
  for (const [key, entry] of b) if (a.get(key)?.fingerprint !== entry.fingerprint) return true;
  return false;
}

/** Whether a file error on path accounts for file: the file itself, or a directory above it. */
function covers(path: string, file: string): boolean {
  const p = resolve(path);
  const f = resolve(file);
  return f === p || f.startsWith(p.endsWith(sep) ? p : p + sep);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
