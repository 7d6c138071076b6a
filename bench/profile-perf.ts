// bench/profile.ts --perf: the waypoint's samples from Linux perf over the window without a V8
// profiler, grouped by where the native code is (kernel, JIT-compiled JS, V8's builtins, GC and
// runtime, OpenSSL, nghttp2, llhttp, libuv, node's C++, libc). Splits what the V8 profile can only
// call "(program)". Pure: bench/profile-summary.test.ts feeds it perf report lines.

const GROUPS: ReadonlyArray<readonly [RegExp, string]> = [
  [
    /^(ossl_|EVP_|SSL_|ssl3?_|tls1?_|aes|gcm|sha\d|OPENSSL|CRYPTO_|BIO_|ERR_|bn_|x25519|ChaCha|Poly1305)/i,
    'OpenSSL',
  ],
  [/^nghttp2/, 'nghttp2'],
  [/^llhttp/, 'llhttp (node http server)'],
  [/^uv_|^uv__/, 'libuv'],
  [
    /sampler|Sampler|TickSample|CpuProfil|ProfilerListener|ProfileGenerator|Symbolize|ProfEvents/,
    'V8 CPU profiler',
  ],
  [
    /Scaveng|MarkCompact|Marking|Sweep|Heap::|Evacuat|Remembered|SlotSet|MinorMS|HeapObject::SizeFromMap|PagedSpace|Worklist/,
    'V8 GC',
  ],
  [/compiler::|maglev|Maglev|turboshaft/i, 'V8 optimizing compilers'],
  [/^Builtins_/, 'V8 builtins (interpreter, inline caches, promises)'],
  [/^node::/, "node's C++ (StreamBase, TLSWrap, HTTP/2 glue)"],
  [/^v8::/, 'V8 runtime (other)'],
];

/** The group of one perf sample's DSO and symbol. */
export function perfGroup(dso: string, sym: string): string {
  if (dso.includes('kernel')) return 'kernel (syscalls, loopback TCP, scheduling)';
  if (dso.startsWith('[JIT]')) return 'JIT-compiled JS';
  for (const [re, name] of GROUPS) if (re.test(sym)) return name;
  if (dso.startsWith('libc')) return 'libc (malloc, memcpy, syscall stubs)';
  return `other (${dso})`;
}

/** `perf report --no-children --sort dso,sym --stdio -g none --percent-limit 0` → share by group, largest first. */
export function summarizePerfReport(text: string): Array<{ group: string; percent: number }> {
  const groups = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S+(?: tid \d+)?)\s+\[.\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const group = perfGroup(m[2]!, m[3]!.trim());
    groups.set(group, (groups.get(group) ?? 0) + Number(m[1]));
  }
  return [...groups].map(([group, percent]) => ({ group, percent })).sort((a, b) => b.percent - a.percent);
}
