// Allocation, promises and CPU per request through an in-process waypoint: counts that stay put on
// a busy machine, where wall-clock figures do not. One process holds the client (undici over an
// HBONE tunnel), the waypoint, the pod's ztunnel stand-in and the backend; each phase drives the
// same fixed number of POSTs (1 KiB each way, a few connections) and reports per request:
//   cpu      process.cpuUsage (user+sys) µs per request; compare as a ratio against a baseline run
//   gc       scavenges and mark-compacts per 1000 requests (PerformanceObserver 'gc')
//   heap     bytes allocated per request (V8 sampling heap profiler, objects collected by minor and
//            major GC included), attributed to the nearest frame of this repository on the stack
//   async    async resources created per request by type (PROMISE, Timeout, ...), with the
//            promises attributed the same way
// Run: node_modules/.bin/node bench/alloc-per-request.ts [--requests N] [--concurrency C]
//        [--body BYTES] [--route] [--json]
// Every loop is bounded: N requests per phase (default 2000, at most 100000) and a 300 s watchdog.
// Addresses: 127.21.0.0/16.
import { createHook } from 'node:async_hooks';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Pool } from 'undici';
import { id, serviceYaml, TestMesh, waypointYaml } from '../test/helpers/mesh.ts';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '4' },
    body: { type: 'string', default: '1024' },
    route: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    /** Also list allocations and promises by file:function under this directory, e.g. src/upstream. */
    detail: { type: 'string' },
  },
});
const N = Math.min(100_000, Math.max(1, Number(args.requests)));
const C = Math.min(64, Math.max(1, Number(args.concurrency)));
const BODY = Buffer.alloc(Math.max(0, Number(args.body)), 'x');
const RESPONSE = Buffer.alloc(1024, 'y');

const WAYPOINT_IP = '127.21.0.2';
const POD_IP = '127.21.0.3';
const VIP = { ip: '127.21.0.10', port: 8080 };
const ROOT = new URL('..', import.meta.url).pathname;

const watchdog = setTimeout(() => {
  console.error('alloc-per-request: gave up after 300 s');
  process.exit(2);
}, 300_000);
watchdog.unref();

/** An HTTPRoute without a retry field: Istio's mesh default retry (the common production case). */
function routeYaml(): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: shop
spec:
  parentRefs:
    - { group: "", kind: Service, name: web, port: ${VIP.port} }
  rules:
    - backendRefs:
        - { name: web, port: ${VIP.port} }
`;
}

async function setUp(mesh: TestMesh): Promise<Pool> {
  const docs = [
    waypointYaml(),
    serviceYaml({ name: 'web', vip: VIP.ip, port: VIP.port, pods: [{ name: 'web-a', ip: POD_IP }] }),
  ];
  if (args.route) docs.push(routeYaml());
  await mesh.writeConfig('mesh.yaml', docs.join('---\n'));
  const backend = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(RESPONSE));
  });
  await mesh.pod(POD_IP, VIP.port, backend, id('shop', 'web'));
  const waypoint = await mesh.startWaypoint({ ip: WAYPOINT_IP });
  const client = await mesh.hboneClient(id('shop', 'curl'));
  return mesh.httpPool(client, waypoint.addresses!.hbone, VIP, { connections: C, pipelining: 1 });
}

/** n POSTs, C at a time; throws on anything but a 200. */
async function drive(pool: Pool, n: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const res = await pool.request({
        path: '/',
        method: 'POST',
        headers: { 'content-length': String(BODY.length) },
        body: BODY,
      });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
}

/** The repository directory (src/upstream, src/proxy, ...) a script URL belongs to, or undefined. */
function ownerOf(url: string): string | undefined {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  if (!path.startsWith(ROOT) || path.includes('/node_modules/')) return undefined;
  const rel = path.slice(ROOT.length);
  const parts = rel.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : rel;
}

interface HeapNode {
  callFrame: { url: string; functionName: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** `file:function:line` of a frame under --detail's directory, or undefined. */
function detailOf(url: string, fn: string, line: number): string | undefined {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  if (!args.detail || !path.startsWith(ROOT + args.detail)) return undefined;
  return `${path.slice(ROOT.length)}:${fn || '(anonymous)'}:${line + 1}`;
}

async function heapPhase(
  pool: Pool,
): Promise<{ total: number; byOwner: Record<string, number>; detail: Record<string, number> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await drive(pool, N);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
    profile: { head: HeapNode };
  };
  session.disconnect();
  const byOwner: Record<string, number> = {};
  const detail: Record<string, number> = {};
  let total = 0;
  const walk = (node: HeapNode, owner: string, fine: string | undefined): void => {
    const f = node.callFrame;
    const own = ownerOf(f.url) ?? owner;
    const here = ownerOf(f.url) ? detailOf(f.url, f.functionName, f.lineNumber) : fine;
    total += node.selfSize;
    byOwner[own] = (byOwner[own] ?? 0) + node.selfSize;
    if (here) detail[here] = (detail[here] ?? 0) + node.selfSize;
    for (const c of node.children) walk(c, own, here);
  };
  walk(profile.head, '(outside the repository)', undefined);
  return { total: total / N, byOwner: perRequest(byOwner), detail: perRequest(detail) };
}

async function asyncPhase(pool: Pool): Promise<{
  byType: Record<string, number>;
  promisesByOwner: Record<string, number>;
  promisesByDetail: Record<string, number>;
}> {
  const byType: Record<string, number> = {};
  const promisesByOwner: Record<string, number> = {};
  const promisesByDetail: Record<string, number> = {};
  const holder: { stack?: string } = {};
  const hook = createHook({
    init(_id, type) {
      byType[type] = (byType[type] ?? 0) + 1;
      if (type !== 'PROMISE') return;
      Error.captureStackTrace(holder);
      let owner = '(outside the repository)';
      for (const line of (holder.stack ?? '').split('\n')) {
        const m = /at (?:(\S+) \()?((?:file:\/\/|\/)[^)\s]+?):(\d+):\d+\)?$/.exec(line.trim());
        const o = m ? ownerOf(m[2]!) : undefined;
        if (m && o && o !== 'bench/alloc-per-request.ts') {
          owner = o;
          const d = detailOf(m[2]!, m[1] ?? '', Number(m[3]) - 1);
          if (d) promisesByDetail[d] = (promisesByDetail[d] ?? 0) + 1;
          break;
        }
      }
      promisesByOwner[owner] = (promisesByOwner[owner] ?? 0) + 1;
    },
  });
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  hook.enable();
  await drive(pool, N);
  hook.disable();
  Error.stackTraceLimit = limit;
  return {
    byType: perRequest(byType),
    promisesByOwner: perRequest(promisesByOwner),
    promisesByDetail: perRequest(promisesByDetail),
  };
}

async function cpuPhase(
  pool: Pool,
): Promise<{ cpuUsPerRequest: number; scavengesPer1000: number; markCompactsPer1000: number }> {
  let scavenges = 0;
  let majors = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === 1) scavenges++;
      else if (kind === 2 || kind === 4) majors++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const before = process.cpuUsage();
  await drive(pool, N);
  const used = process.cpuUsage(before);
  await new Promise((r) => setImmediate(r)); // let the observer deliver
  obs.disconnect();
  return {
    cpuUsPerRequest: (used.user + used.system) / N,
    scavengesPer1000: (scavenges * 1000) / N,
    markCompactsPer1000: (majors * 1000) / N,
  };
}

function perRequest(counts: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts).sort((a, b) => b[1] - a[1]))
    out[k] = Math.round((v / N) * 10) / 10;
  return out;
}

const mesh = await TestMesh.create();
try {
  const pool = await setUp(mesh);
  await drive(pool, Math.min(N, 1000)); // warm-up: JIT, pooled tunnels and connections
  const cpu = await cpuPhase(pool);
  const heap = await heapPhase(pool);
  const asyncs = await asyncPhase(pool);
  const result = {
    requests: N,
    concurrency: C,
    bodyBytes: BODY.length,
    route: args.route,
    ...cpu,
    heap,
    async: asyncs,
  };
  if (args.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      `requests ${N}, concurrency ${C}, body ${BODY.length} B, ${args.route ? 'HTTPRoute (mesh default retry)' : 'default route'}`,
    );
    console.log(
      `cpu: ${cpu.cpuUsPerRequest.toFixed(0)} µs/request (whole process: client, waypoint, stand-in, backend)`,
    );
    console.log(
      `gc per 1000 requests: ${cpu.scavengesPer1000.toFixed(1)} scavenges, ${cpu.markCompactsPer1000.toFixed(2)} mark-compacts`,
    );
    console.log(`heap allocated: ${Math.round(heap.total)} B/request; by nearest repository frame:`);
    for (const [k, v] of Object.entries(heap.byOwner))
      if (v >= 50) console.log(`  ${k.padEnd(32)} ${Math.round(v)} B`);
    console.log('async resources per request:');
    for (const [k, v] of Object.entries(asyncs.byType)) if (v >= 0.05) console.log(`  ${k.padEnd(32)} ${v}`);
    console.log('promises per request, by nearest repository frame:');
    for (const [k, v] of Object.entries(asyncs.promisesByOwner))
      if (v >= 0.05) console.log(`  ${k.padEnd(32)} ${v}`);
    if (args.detail) {
      console.log(`heap allocated per request under ${args.detail}, by nearest frame there:`);
      for (const [k, v] of Object.entries(heap.detail).slice(0, 25))
        console.log(`  ${k.padEnd(60)} ${Math.round(v)} B`);
      console.log(`promises per request under ${args.detail}, by nearest frame there:`);
      for (const [k, v] of Object.entries(asyncs.promisesByDetail).slice(0, 25))
        console.log(`  ${k.padEnd(60)} ${v}`);
    }
  }
} finally {
  await mesh.close();
}
