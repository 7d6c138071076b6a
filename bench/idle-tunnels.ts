// What an idle keep-alive tunnel costs the waypoint, and whether the memory comes back after close.
// Opens --count HBONE tunnels (HTTP/1.1, one request each, then idle) through a waypoint child run
// with --expose-gc, measures its heap and RSS after full collections with the tunnels open and
// after they closed, and prints per-tunnel figures. Loopback only (127.0.92.x); bounded in count
// (at most 20,000) and time (every wait has a deadline).
//
//   node --experimental-strip-types bench/idle-tunnels.ts --count 5000
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { WAYPOINT_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { HboneClient } from '../src/hbone/client.ts';
import { memoryCredentials } from '../src/identity/credentials.ts';
import { createDevCa } from '../src/identity/dev-ca.ts';
import { silentLogger } from '../src/observe/logger.ts';
import { InboundTunnel } from '../src/ztunnel/inbound.ts';

const WAYPOINT_IP = '127.0.92.3';
const POD_IP = '127.0.92.2';
const VIP = '127.0.92.10';
const TD = 'cluster.local';
const spiffe = (sa: string): string => `spiffe://${TD}/ns/bench/sa/${sa}`;
const MAX_COUNT = 20_000;
const BATCH = 100;

const { values } = parseArgs({
  options: { count: { type: 'string', default: '5000' }, snapshot: { type: 'string' } },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
  process.stderr.write(`--count: expected an integer 1-${MAX_COUNT}\n`);
  process.exit(2);
}

function meshYaml(): string {
  return `apiVersion: v1
kind: Namespace
metadata: { name: bench, labels: { istio.io/use-waypoint: waypoint } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: bench, labels: { istio.io/waypoint-for: service } }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: bench }
spec:
  clusterIP: ${VIP}
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: web-0, namespace: bench, labels: { app: web } }
spec: { serviceAccountName: web, containers: [{ name: app, image: app }] }
status: { phase: Running, podIP: ${POD_IP}, conditions: [{ type: Ready, status: "True" }] }
`;
}

type Figures = Record<'heapUsed' | 'heapTotal' | 'rss' | 'external' | 'tunnels' | 'sessions', number>;

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** One request on the tunnel, read to the end of its response; the tunnel stays open (keep-alive). */
function oneRequest(stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\nok')) {
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.write('GET / HTTP/1.1\r\nhost: web\r\n\r\n');
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'idle-tunnels-'));
  const ca = await createDevCa({ trustDomain: TD });
  const creds = async (sa: string) => {
    const c = await ca.issue(spiffe(sa));
    return { cert: c.certChainPem, key: c.keyPem, ca: ca.rootPem };
  };
  await writeFile(join(dir, 'mesh.yaml'), meshYaml());
  const backend = http.createServer((_req, res) => res.end('ok'));
  backend.keepAliveTimeout = 3_600_000;
  await new Promise<void>((r) => backend.listen(8080, POD_IP, r));
  const inbound = new InboundTunnel({
    listen: { ip: POD_IP, port: 15008 },
    credentials: memoryCredentials(await creds('web')),
    log: silentLogger,
  });
  await inbound.listen();

  const child = spawn(
    process.execPath,
    [
      ...WAYPOINT_NODE_FLAGS,
      '--expose-gc',
      join(import.meta.dirname, 'idle-tunnels-waypoint.ts'),
      JSON.stringify({ configDir: dir, ip: WAYPOINT_IP, ...(await creds('waypoint')) }),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const out = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> =>
    JSON.parse((await withDeadline(out.next(), 30_000, 'the waypoint child')).value as string);
  await next(); // ready
  const measure = async (): Promise<Figures> => {
    child.stdin!.write('measure\n');
    return (await next()) as Figures;
  };

  const client = new HboneClient(memoryCredentials(await creds('sleep')));
  const target = { ip: WAYPOINT_IP, hbonePort: 15008, identity: spiffe('waypoint') };
  const openBatch = async (n: number): Promise<ClientHttp2Stream[]> => {
    const streams: ClientHttp2Stream[] = [];
    for (let i = 0; i < n; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, n - i) }, () => client.open(target, `${VIP}:80`)),
      );
      await withDeadline(Promise.all(batch.map(oneRequest)), 30_000, 'responses');
      streams.push(...batch);
    }
    return streams;
  };
  const closeAll = async (streams: ClientHttp2Stream[], want: number): Promise<Figures> => {
    for (const s of streams) s.close();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const f = await measure();
      if (f.tunnels <= want || Date.now() > deadline) return f;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  // Warm-up: code paths compiled, pools and caches filled, before the baseline.
  await closeAll(await openBatch(200), 0);
  const before = await measure();
  const streams = await openBatch(count);
  const open = await measure();
  if (values.snapshot) {
    // Heap snapshots with the tunnels open, and before them, to diff by constructor.
    child.stdin!.write(`snapshot ${values.snapshot}.open.heapsnapshot\n`);
    await next();
  }
  const after = await closeAll(streams, 0);
  // A second round: what a leak would add again; released memory is reused instead.
  const again = await closeAll(await openBatch(count), 0);

  const kib = (b: number): string => (b / 1024).toFixed(1);
  const per = (k: 'heapUsed' | 'heapTotal' | 'rss' | 'external'): string =>
    kib((open[k] - before[k]) / count);
  process.stdout.write(
    [
      `idle keep-alive HTTP/1.1 tunnels: ${count} (${open.sessions} HBONE connections), node ${process.version}`,
      '',
      '| figure | before | open | after close | per idle tunnel |',
      '| --- | --- | --- | --- | --- |',
      `| heap used (KiB) | ${kib(before.heapUsed)} | ${kib(open.heapUsed)} | ${kib(after.heapUsed)} | ${per('heapUsed')} KiB |`,
      `| heap total (KiB) | ${kib(before.heapTotal)} | ${kib(open.heapTotal)} | ${kib(after.heapTotal)} | ${per('heapTotal')} KiB |`,
      `| RSS (KiB) | ${kib(before.rss)} | ${kib(open.rss)} | ${kib(after.rss)} | ${per('rss')} KiB |`,
      `| external (KiB) | ${kib(before.external)} | ${kib(open.external)} | ${kib(after.external)} | ${per('external')} KiB |`,
      `| tunnels held | ${before.tunnels} | ${open.tunnels} | ${after.tunnels} | |`,
      '',
      `after a second round of ${count} opened and closed: heap used ${kib(again.heapUsed)} KiB, heap total ${kib(again.heapTotal)} KiB, RSS ${kib(again.rss)} KiB, tunnels ${again.tunnels}`,
      '',
    ].join('\n'),
  );
  client.close();
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  await inbound.close();
  backend.closeAllConnections();
  backend.close();
  await rm(dir, { recursive: true, force: true });
}

await main();
