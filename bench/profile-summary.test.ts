import { describe, expect, it } from 'vitest';
import { type AgentSnapshot, memoryBreakdown, summarizeSmaps } from './profile-memory.ts';
import { summarizePerfReport } from './profile-perf.ts';
import { renderProfile, type WindowFigures } from './profile-report.ts';
import { type CpuProfile, categoryOf, summarizeCpuProfile, summarizeHeapProfile } from './profile-summary.ts';

const ROOT = '/repo/';
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

// (root) → socketOnData (node:_http_server) → handle (src/proxy) → writev (native)
//        → (garbage collector), (idle), (program)
//        → onData (undici) → wasm_on_body (wasm)
const PROFILE: CpuProfile = {
  startTime: 1_000,
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5, 6, 7, 8] },
    { id: 2, callFrame: frame('socketOnData', 'node:_http_server', 949), children: [3] },
    { id: 3, callFrame: frame('handle', 'file:///repo/src/proxy/http-engine.ts', 63), children: [4] },
    { id: 4, callFrame: frame('writev') },
    { id: 5, callFrame: frame('(garbage collector)') },
    { id: 6, callFrame: frame('(idle)') },
    { id: 7, callFrame: frame('(program)') },
    { id: 8, callFrame: frame('onData', 'file:///x/node_modules/undici/lib/client.js', 9), children: [9] },
    { id: 9, callFrame: frame('wasm_on_body', 'wasm://wasm/abc') },
  ],
  // Sample i lasts timeDeltas[i+1] µs. The first sample (at 1_000 + 0) falls before the window.
  samples: [2, 3, 4, 4, 5, 6, 7, 9, 8, 3],
  timeDeltas: [0, 1000, 2000, 3000, 3000, 4000, 10000, 2000, 1000, 1000],
};

describe('categoryOf', () => {
  it('names Node internals, our directories, npm packages and V8 pseudo-frames', () => {
    expect(categoryOf(frame('x', 'node:_tls_wrap'), ROOT)).toBe('node: TLS / crypto');
    expect(categoryOf(frame('x', 'node:internal/http2/core'), ROOT)).toBe('node: HTTP/2');
    expect(categoryOf(frame('x', 'node:internal/streams/readable'), ROOT)).toBe(
      'node: streams / net / buffer',
    );
    expect(categoryOf(frame('x', 'node:events'), ROOT)).toBe('node: other (events, async_hooks, url, ...)');
    expect(categoryOf(frame('x', 'file:///repo/filters/routing/select.ts'), ROOT)).toBe('filters/routing');
    expect(categoryOf(frame('x', 'file:///repo/config/load.ts'), ROOT)).toBe('config');
    expect(categoryOf(frame('x', 'file:///a/node_modules/@grpc/grpc-js/x.js'), ROOT)).toBe(
      'npm: @grpc/grpc-js',
    );
    expect(categoryOf(frame('(garbage collector)'), ROOT)).toBe('GC');
  });
});

describe('summarizeCpuProfile', () => {
  it('charges native frames to their JS caller and skips samples before the window', () => {
    const s = summarizeCpuProfile(PROFILE, ROOT, 1_500);
    const ms = Object.fromEntries(s.categories.map((c) => [c.category, c.ms]));
    // handle: sample 1 (2 ms) + sample 9 (0: last) ; writev (native) samples 2, 3: 3 + 3 ms → src/proxy.
    expect(ms['src/proxy']).toBe(8);
    expect(s.categories.find((c) => c.category === 'src/proxy')?.nativeMs).toBe(6);
    expect(ms.GC).toBe(4);
    expect(ms.idle).toBe(10);
    expect(ms['(program): native, outside any JS function']).toBe(2);
    expect(ms['wasm (undici llhttp; amaro while stripping .ts)']).toBe(1);
    expect(ms['undici (JS)']).toBe(1);
    // socketOnData's first sample is before fromUs, so it is absent.
    expect(ms['node: HTTP/1 (_http_*)']).toBeUndefined();
    expect(s.totalMs).toBe(26);
    expect(s.idleMs).toBe(10);
    expect(s.functions[0]).toMatchObject({ name: '(idle)', ms: 10 });
    expect(s.functions.find((f) => f.name === 'writev')).toMatchObject({ where: '(native)', ms: 6 });
  });
});

describe('summarizeHeapProfile', () => {
  it('adds self sizes by category, native allocations to the caller', () => {
    const s = summarizeHeapProfile(
      {
        callFrame: frame('(root)'),
        selfSize: 0,
        children: [
          {
            callFrame: frame('run', 'file:///repo/src/upstream/retry.ts', 205),
            selfSize: 300,
            children: [{ callFrame: frame('Map'), selfSize: 100 }],
          },
          { callFrame: frame('nextTick', 'node:internal/process/task_queues', 112), selfSize: 600 },
        ],
      },
      ROOT,
    );
    expect(s.totalBytes).toBe(1000);
    expect(s.categories).toEqual([
      { category: 'node: timers / microtasks', group: 'node', bytes: 600 },
      { category: 'src/upstream', group: 'ours', bytes: 400 },
    ]);
  });
});

const SMAPS = `55d0a0000000-55d0a8000000 r-xp 00000000 fd:01 1234  /usr/bin/node
Size:             131072 kB
Rss:               50000 kB
Anonymous:             0 kB
55d0a8000000-55d0a8100000 rw-p 08000000 fd:01 1234  /usr/bin/node
Size:               1024 kB
Rss:                1000 kB
Anonymous:           600 kB
55d0b0000000-55d0b2000000 rw-p 00000000 00:00 0  [heap]
Size:              32768 kB
Rss:               20000 kB
Anonymous:         20000 kB
7f0000000000-7f0280000000 ---p 00000000 00:00 0
Size:           10485760 kB
Rss:                8000 kB
Anonymous:          8000 kB
7f0300000000-7f0300400000 rwxp 00000000 00:00 0
Size:               4096 kB
Rss:                3000 kB
Anonymous:          3000 kB
7f0400000000-7f0402000000 rw-p 00000000 00:00 0
Size:              32768 kB
Rss:               30000 kB
Anonymous:         30000 kB
7f0500000000-7f0500100000 r--p 00000000 fd:01 99  /usr/lib/libc.so.6
Size:               1024 kB
Rss:                 400 kB
Anonymous:             0 kB
`;

const AGENT: AgentSnapshot = {
  memoryUsage: { rss: 0, heapTotal: 0, heapUsed: 20e6, external: 5e6, arrayBuffers: 1e6 },
  heapSpaces: [
    { space_name: 'old_space', space_size: 0, space_used_size: 0, physical_space_size: 20e6 },
    { space_name: 'code_space', space_size: 0, space_used_size: 0, physical_space_size: 2e6 },
    { space_name: 'map_space', space_size: 0, space_used_size: 0, physical_space_size: 0 },
  ],
  amaroLoaded: false,
};

describe('summarizeSmaps and memoryBreakdown', () => {
  it('cuts mappings into file-backed, huge, executable, brk and other anonymous', () => {
    const s = summarizeSmaps(SMAPS, '/usr/bin/node');
    expect(s).toEqual({
      rssKiB: 112_400,
      anonKiB: 61_600,
      nodeBinaryFileKiB: 50_400,
      otherFileKiB: 400,
      hugeAnonKiB: [8000],
      execAnonKiB: 3000,
      brkKiB: 20_000,
      otherAnonKiB: 30_600,
    });
  });

  it('accounts for all of RSS, code space counted once', () => {
    const rows = memoryBreakdown(summarizeSmaps(SMAPS, '/usr/bin/node'), AGENT);
    const mb = Object.fromEntries(rows.map((r) => [r.component, r.mb]));
    expect(rows.reduce((a, r) => a + r.mb, 0)).toBeCloseTo((112_400 * 1024) / 1e6, 6);
    expect(mb['V8 heap: old_space']).toBe(20);
    expect(mb['V8 heap: map_space']).toBeUndefined();
    // 3000 KiB executable = 3.072 MB, of which 2 MB is V8's code space.
    expect(mb['executable anonymous beyond V8 code space (wasm code, trampolines)']).toBeCloseTo(1.072, 6);
    expect(mb['array buffers (Buffers: sockets, bodies)']).toBe(1);
  });
});

describe('summarizePerfReport', () => {
  it('groups perf report lines by library and sorts by share', () => {
    const report = [
      '# Samples: 3K of event cpu-clock',
      '    16.48%  [kernel.kallsyms]    [k] pvm_irq_enable',
      '     3.22%  node                 [.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>',
      '     2.46%  libc.so.6            [.] _int_malloc',
      '     2.00%  node                 [.] ossl_aes_gcm_encrypt_avx512',
      '     1.50%  [JIT] tid 5693       [.] LazyCompile:~onData node:_http_server:1',
      '     1.00%  node                 [.] nghttp2_session_mem_send_internal',
      '     0.50%  node                 [.] Builtins_KeyedLoadIC_Megamorphic',
      '     0.50%  node                 [.] node::StreamBase::JSMethod<&node::StreamBase::Writev>',
    ].join('\n');
    expect(summarizePerfReport(report)).toEqual([
      { group: 'kernel (syscalls, loopback TCP, scheduling)', percent: 16.48 },
      { group: 'V8 GC', percent: 3.22 },
      { group: 'libc (malloc, memcpy, syscall stubs)', percent: 2.46 },
      { group: 'OpenSSL', percent: 2 },
      { group: 'JIT-compiled JS', percent: 1.5 },
      { group: 'nghttp2', percent: 1 },
      { group: 'V8 builtins (interpreter, inline caches, promises)', percent: 0.5 },
      { group: "node's C++ (StreamBase, TLSWrap, HTTP/2 glue)", percent: 0.5 },
    ]);
  });
});

describe('renderProfile', () => {
  it('scales by the profiled window when the window without a profiler did not keep the rate', () => {
    const smaps = summarizeSmaps(SMAPS, '/usr/bin/node');
    const win = (cpu: number, main: number, unsent: number): WindowFigures => ({
      requests: 1000,
      warmupRequests: 0,
      ok: 1000,
      unsent,
      seconds: 1,
      processCpuS: cpu,
      mainThreadCpuS: main,
      peakRssMB: 115,
      p99Ms: 3,
      memory: { smaps, agent: AGENT },
      loadAvg: [1, 1, 1],
      markUs: 1_500,
    });
    const text = renderProfile({
      date: 'D',
      command: 'c',
      node: 'v24',
      pinning: 'off',
      root: ROOT,
      nodeArgs: [],
      env: {},
      idle: { smaps, agent: AGENT, rssMB: 100 },
      plain: win(2, 1.8, 500),
      cpu: { ...win(0.6, 0.4, 0), profile: PROFILE },
      top: 5,
    });
    expect(text).toContain('| src/proxy | ours | 8 | 50.0% | 37.5% | 0.2000 |');
    expect(text).toContain('the window without a profiler did not keep the rate');
  });

  it('prints CPU-s per 1000 requests from the unprofiled window and the top functions of our code', () => {
    const smaps = summarizeSmaps(SMAPS, '/usr/bin/node');
    const win = (cpu: number, main: number): WindowFigures => ({
      requests: 1000,
      warmupRequests: 0,
      ok: 1000,
      unsent: 0,
      seconds: 1,
      processCpuS: cpu,
      mainThreadCpuS: main,
      peakRssMB: 115,
      p99Ms: 3,
      memory: { smaps, agent: AGENT },
      loadAvg: [1, 1, 1],
      markUs: 1_500,
    });
    const text = renderProfile({
      date: 'D',
      command: 'node bench/profile.ts',
      node: 'v24',
      pinning: 'off',
      root: ROOT,
      nodeArgs: [],
      env: {},
      idle: { smaps, agent: AGENT, rssMB: 100 },
      plain: win(0.5, 0.4),
      cpu: { ...win(0.6, 0.45), profile: PROFILE },
      top: 5,
    });
    // Busy = 16 ms, src/proxy = 8 ms: half of the unprofiled main thread's 0.4 CPU-s per 1000.
    expect(text).toContain('| src/proxy | ours | 8 | 50.0% | 37.5% | 0.2000 |');
    expect(text).toContain('| other threads (not sampled: libuv pool, V8 platform) |  |  |  |  | 0.1000 |');
    expect(text).toContain('| **the waypoint process** |  | **0.500** |');
    expect(text).toContain('| handle | src/proxy/http-engine.ts:64 | src/proxy | 2 | 12.5% |');
  });
});
