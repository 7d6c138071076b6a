// Memory by component for bench/profile.ts: /proc/PID/smaps read from outside, cut by mapping
// (file-backed, the node binary, huge reservations, executable, brk heap, other anonymous), then
// lined up with the V8 figures the process reported itself (bench/profile-agent.ts's snapshot).
// Pure, so bench/profile-summary.test.ts can feed it synthetic text.

export interface SmapsSummary {
  readonly rssKiB: number;
  readonly anonKiB: number;
  /** The node executable's mappings: file-backed pages (text, rodata) and its anonymous (COW) pages. */
  readonly nodeBinaryFileKiB: number;
  readonly otherFileKiB: number;
  /** Anonymous mappings of ≥ 1 GiB virtual size (wasm memories reserve ~10 GiB each): resident KiB of each. */
  readonly hugeAnonKiB: readonly number[];
  /** Anonymous executable mappings (V8's code space, wasm code). */
  readonly execAnonKiB: number;
  /** [heap]: glibc malloc's brk arena (OpenSSL, nghttp2, libuv, array buffer backing stores, ...). */
  readonly brkKiB: number;
  /** Every other anonymous page: V8 heap pages, malloc's mmap arenas, thread stacks. */
  readonly otherAnonKiB: number;
}

const HEADER = /^[0-9a-f]+-[0-9a-f]+\s+(\S+)\s+\S+\s+\S+\s+\d+\s*(.*)$/;

/** Cuts /proc/PID/smaps into the groups of SmapsSummary; `exe` is the node executable's path. */
export function summarizeSmaps(text: string, exe: string): SmapsSummary {
  const s = {
    rssKiB: 0,
    anonKiB: 0,
    nodeBinaryFileKiB: 0,
    otherFileKiB: 0,
    execAnonKiB: 0,
    brkKiB: 0,
    otherAnonKiB: 0,
  };
  const huge: number[] = [];
  let cur: { perms: string; path: string; size: number; rss: number; anon: number } | undefined;
  const flush = (): void => {
    if (!cur) return;
    s.rssKiB += cur.rss;
    s.anonKiB += cur.anon;
    const file = cur.rss - cur.anon;
    if (cur.path.startsWith('/')) {
      if (cur.path === exe) s.nodeBinaryFileKiB += file;
      else s.otherFileKiB += file;
    }
    if (cur.path === '[heap]') s.brkKiB += cur.anon;
    else if (cur.path.startsWith('/')) s.otherAnonKiB += cur.anon;
    else if (cur.size >= 1024 * 1024) huge.push(cur.anon);
    else if (cur.perms.includes('x')) s.execAnonKiB += cur.anon;
    else s.otherAnonKiB += cur.anon;
  };
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      flush();
      cur = { perms: h[1]!, path: h[2]!.trim(), size: 0, rss: 0, anon: 0 };
      continue;
    }
    const f = /^(Size|Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (!f || !cur) continue;
    const v = Number(f[2]);
    if (f[1] === 'Size') cur.size = v;
    else if (f[1] === 'Rss') cur.rss = v;
    else cur.anon = v;
  }
  flush();
  return { ...s, hugeAnonKiB: huge.filter((k) => k > 0).sort((a, b) => b - a) };
}

/** What bench/profile-agent.ts's snapshot holds (the subset used here). */
export interface AgentSnapshot {
  readonly memoryUsage: {
    rss: number;
    heapTotal: number;
    heapUsed: number;
    external: number;
    arrayBuffers: number;
  };
  readonly heapSpaces: ReadonlyArray<{
    space_name: string;
    space_size: number;
    space_used_size: number;
    physical_space_size: number;
  }>;
  readonly amaroLoaded?: boolean;
}

export interface MemoryRow {
  readonly component: string;
  readonly mb: number;
}

const MB = (kib: number): number => (kib * 1024) / 1e6;

/** Memory by component, MB (10⁶ bytes); the last row is what the others leave of RSS. */
export function memoryBreakdown(smaps: SmapsSummary, agent: AgentSnapshot): MemoryRow[] {
  const rows: MemoryRow[] = [
    {
      component: 'node binary, file-backed (text, rodata; shared between processes)',
      mb: MB(smaps.nodeBinaryFileKiB),
    },
    { component: 'other files (libc, libstdc++, ICU data, ...)', mb: MB(smaps.otherFileKiB) },
  ];
  for (const sp of agent.heapSpaces) {
    if (sp.physical_space_size === 0) continue;
    rows.push({ component: `V8 heap: ${sp.space_name}`, mb: sp.physical_space_size / 1e6 });
  }
  const external = agent.memoryUsage.external;
  rows.push({
    component: 'array buffers (Buffers: sockets, bodies)',
    mb: agent.memoryUsage.arrayBuffers / 1e6,
  });
  rows.push({
    component: 'other external memory (wasm memories: amaro, llhttp; ...)',
    mb: (external - agent.memoryUsage.arrayBuffers) / 1e6,
  });
  const hugeKiB = smaps.hugeAnonKiB.reduce((a, b) => a + b, 0);
  rows.push({
    component: 'huge anonymous reservations (≥ 1 GiB virtual: wasm memories with guard regions)',
    mb: MB(hugeKiB),
  });
  // V8's code spaces live in executable mappings too: only what is beyond them is wasm code and the like.
  const code = agent.heapSpaces
    .filter((sp) => sp.space_name.startsWith('code'))
    .reduce((a, sp) => a + sp.physical_space_size, 0);
  rows.push({
    component: 'executable anonymous beyond V8 code space (wasm code, trampolines)',
    mb: Math.max(0, MB(smaps.execAnonKiB) - code / 1e6),
  });
  const accounted = rows.reduce((a, r) => a + r.mb, 0);
  rows.push({
    component: 'the rest: native malloc (OpenSSL, nghttp2, libuv, llhttp), malloc slack, thread stacks',
    mb: MB(smaps.rssKiB) - accounted,
  });
  return rows;
}
