// The pure half of bench/profile.ts: a V8 CPU profile (.cpuprofile) cut into self time by category,
// a sampling heap profile into allocated bytes by category, and /proc/PID/smaps plus the process's
// own V8 figures into memory by component. No I/O here, so bench/profile-summary.test.ts can feed it
// tiny synthetic inputs.

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

export interface CpuProfile {
  readonly nodes: ReadonlyArray<{ id: number; callFrame: CallFrame; children?: readonly number[] }>;
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export type Group = 'idle' | 'gc' | 'node' | 'ours' | 'deps' | 'other';

/** A function without a script (a C++ binding or builtin): charged to its nearest JS caller's category. */
const NATIVE = 'native';

const NODE_CATEGORIES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^(internal\/(tls|crypto)|_tls_|tls$|crypto$|https$)/, 'node: TLS / crypto'],
  [/^(internal\/http2|http2$)/, 'node: HTTP/2'],
  [/^(_http_|http$|internal\/http$)/, 'node: HTTP/1 (_http_*)'],
  [
    /^(internal\/streams|stream|net$|internal\/net|internal\/stream_base_commons|internal\/js_stream_socket|buffer$|internal\/buffer)/,
    'node: streams / net / buffer',
  ],
  [
    /^(internal\/timers|timers|internal\/process\/task_queues|internal\/process\/promises)/,
    'node: timers / microtasks',
  ],
];

/** The category of one frame; `root` is the repository's absolute path (with a trailing slash). */
export function categoryOf(frame: CallFrame, root: string): string {
  switch (frame.functionName) {
    case '(garbage collector)':
      return 'GC';
    case '(idle)':
      return 'idle';
    case '(program)':
      return '(program): native, outside any JS function';
    case '(root)':
      return '(root)';
  }
  const url = frame.url;
  if (url === '') return NATIVE;
  if (url.startsWith('wasm://')) return 'wasm (undici llhttp; amaro while stripping .ts)';
  if (url.startsWith('node:')) {
    const id = url.slice(5);
    for (const [re, name] of NODE_CATEGORIES) if (re.test(id)) return name;
    return 'node: other (events, async_hooks, url, ...)';
  }
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 14).split('/');
    const pkg = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? '?');
    return pkg === 'undici' ? 'undici (JS)' : `npm: ${pkg}`;
  }
  if (path.startsWith(root)) {
    const rel = path.slice(root.length).split('/');
    if (rel[0] === 'src' || rel[0] === 'filters') return rel.length > 2 ? `${rel[0]}/${rel[1]}` : rel[0];
    return rel[0] === 'config' || rel[0] === 'bin' || rel[0] === 'bench' ? rel[0] : 'other';
  }
  return 'other';
}

export function groupOf(category: string): Group {
  if (category === 'idle') return 'idle';
  if (category === 'GC') return 'gc';
  if (category.startsWith('node:') || category.startsWith('(program)') || category.startsWith('wasm'))
    return 'node';
  if (category === 'undici (JS)' || category.startsWith('native')) return 'node';
  if (/^(src|filters|config|bin)\b/.test(category)) return 'ours';
  if (category.startsWith('npm:')) return 'deps';
  return 'other';
}

export interface CategoryRow {
  readonly category: string;
  readonly group: Group;
  /** Self time (ms) including native functions it called. */
  readonly ms: number;
  /** Of which in native functions (C++ bindings, builtins) called from this category's JS. */
  readonly nativeMs: number;
}

export interface FunctionRow {
  readonly name: string;
  readonly where: string;
  readonly category: string;
  readonly ms: number;
}

export interface CpuSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly categories: readonly CategoryRow[];
  /** Every function's self time, largest first (native ones under their own name). */
  readonly functions: readonly FunctionRow[];
}

/** Each node's category, native nodes resolved to their nearest categorised ancestor's. */
function nodeCategories(
  nodes: CpuProfile['nodes'],
  root: string,
): Map<number, { category: string; native: boolean }> {
  const parent = new Map<number, number>();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(nodes.map((n) => [n.id, n] as const));
  const out = new Map<number, { category: string; native: boolean }>();
  for (const n of nodes) {
    const own = categoryOf(n.callFrame, root);
    if (own !== NATIVE) {
      out.set(n.id, { category: own, native: false });
      continue;
    }
    let up = parent.get(n.id);
    let category = 'native (no JS caller)';
    for (let hops = 0; up !== undefined && hops < 1000; hops++) {
      const c = categoryOf(byId.get(up)!.callFrame, root);
      if (c !== NATIVE && c !== '(root)') {
        category = c;
        break;
      }
      up = parent.get(up);
    }
    out.set(n.id, { category, native: true });
  }
  return out;
}

/**
 * Self time by category and by function, of the samples taken at or after fromUs (the profile's
 * clock, µs). Sample i is taken at startTime + timeDeltas[0..i] and lasts until sample i+1.
 */
export function summarizeCpuProfile(profile: CpuProfile, root: string, fromUs = 0): CpuSummary {
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromUs) continue;
    const d = Math.max(0, profile.timeDeltas[i + 1] ?? 0);
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + d);
  }
  const cats = nodeCategories(profile.nodes, root);
  const byCat = new Map<string, { ms: number; nativeMs: number }>();
  const byFn = new Map<string, FunctionRow>();
  let totalMs = 0;
  for (const n of profile.nodes) {
    const ms = (selfUs.get(n.id) ?? 0) / 1000;
    if (ms === 0) continue;
    totalMs += ms;
    const { category, native } = cats.get(n.id)!;
    const row = byCat.get(category) ?? { ms: 0, nativeMs: 0 };
    row.ms += ms;
    if (native) row.nativeMs += ms;
    byCat.set(category, row);
    const f = n.callFrame;
    const where = f.url ? `${shortUrl(f.url, root)}:${f.lineNumber + 1}` : '(native)';
    const key = `${f.functionName}@${where}`;
    const prev = byFn.get(key);
    byFn.set(key, {
      name: f.functionName || '(anonymous)',
      where,
      category,
      ms: (prev?.ms ?? 0) + ms,
    });
  }
  const categories = [...byCat]
    .map(([category, r]) => ({ category, group: groupOf(category), ms: r.ms, nativeMs: r.nativeMs }))
    .sort((a, b) => b.ms - a.ms);
  const functions = [...byFn.values()].sort((a, b) => b.ms - a.ms);
  return { totalMs, idleMs: byCat.get('idle')?.ms ?? 0, categories, functions };
}

export function shortUrl(url: string, root: string): string {
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  if (path.startsWith(root)) return path.slice(root.length);
  const nm = path.lastIndexOf('/node_modules/');
  return nm >= 0 ? path.slice(nm + 1) : path;
}

export interface HeapProfileNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children?: readonly HeapProfileNode[];
}

/** Bytes a sampling heap profile saw allocated, by category (native frames charged to their JS caller). */
export function summarizeHeapProfile(
  head: HeapProfileNode,
  root: string,
): {
  totalBytes: number;
  categories: Array<{ category: string; group: Group; bytes: number }>;
  functions: FunctionRow[];
} {
  const byCat = new Map<string, number>();
  const byFn = new Map<string, FunctionRow>();
  let totalBytes = 0;
  const walk = (n: HeapProfileNode, inherited: string, depth: number): void => {
    const own = categoryOf(n.callFrame, root);
    const category = own === NATIVE || own === '(root)' ? inherited : own;
    if (n.selfSize > 0) {
      totalBytes += n.selfSize;
      byCat.set(category, (byCat.get(category) ?? 0) + n.selfSize);
      const f = n.callFrame;
      const where = f.url ? `${shortUrl(f.url, root)}:${f.lineNumber + 1}` : '(native)';
      const key = `${f.functionName}@${where}`;
      // Bytes are kept in the ms field's place: FunctionRow is shared with the CPU summary.
      byFn.set(key, {
        name: f.functionName || '(anonymous)',
        where,
        category,
        ms: (byFn.get(key)?.ms ?? 0) + n.selfSize,
      });
    }
    if (depth < 2000) for (const c of n.children ?? []) walk(c, category, depth + 1);
  };
  walk(head, 'native (no JS caller)', 0);
  const categories = [...byCat]
    .map(([category, bytes]) => ({ category, group: groupOf(category), bytes }))
    .sort((a, b) => b.bytes - a.bytes);
  return { totalBytes, categories, functions: [...byFn.values()].sort((a, b) => b.ms - a.ms) };
}
