// The other subcommands, as a user tries the waypoint without a cluster: `dev-ca` for certificates,
// `tunnel inbound` / `tunnel outbound` as ztunnel stand-ins around `run`, and `demo` (npm start).
// Addresses: waypoint 127.25.0.7, client side 127.0.55.1, VIP 127.0.55.10, pod 127.0.65.11; the demo
// runs config/demo moved from npm start's 127.10.x.y to 127.25.(100+x).y, so a running npm start
// and this test never meet.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  curl,
  getText,
  parseHostPort,
  ROOT,
  serviceYaml,
  spawnCli,
  TestMesh,
  waypointYaml,
} from '../helpers/mesh.ts';

const WAYPOINT_ID = 'spiffe://cluster.local/ns/shop/sa/waypoint';
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/curl';

describe('node-waypoint dev-ca, tunnel and run, as three processes', () => {
  let mesh: TestMesh;
  let pki: string;
  const spawn = (args: string[]): CliProcess => spawnCli(args, { register: (fn) => mesh.onClose(fn) });
  /** Where dev-ca puts an identity's files, as its usage says: DIR/NS.SA.cert.pem and DIR/NS.SA.key.pem. */
  const files = (identity: string): { cert: string; key: string; ca: string } => {
    const [, ns, sa] = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(identity)!;
    return {
      cert: join(pki, `${ns}.${sa}.cert.pem`),
      key: join(pki, `${ns}.${sa}.key.pem`),
      ca: join(pki, 'root-cert.pem'),
    };
  };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    pki = join(mesh.dir, 'pki');
  });
  afterAll(() => mesh?.close());

  it('dev-ca writes a trust bundle and a certificate per identity', async () => {
    const ca = spawn([
      'dev-ca',
      '--out',
      pki,
      '--identity',
      WAYPOINT_ID,
      '--identity',
      WEB_ID,
      '--identity',
      CLIENT_ID,
    ]);
    expect(await ca.exited).toBe(0);
    expect(ca.stdout()).toContain(`trust bundle: ${join(pki, 'root-cert.pem')}`);
    const root = new X509Certificate(await readFile(join(pki, 'root-cert.pem')));
    expect(root.ca).toBe(true);
    expect((await stat(join(pki, 'root-key.pem'))).mode & 0o077).toBe(0);
    for (const identity of [WAYPOINT_ID, WEB_ID, CLIENT_ID]) {
      const f = files(identity);
      expect(ca.stdout()).toContain(`${identity}\n  cert: ${f.cert}\n  key:  ${f.key}`);
      const leaf = new X509Certificate(await readFile(f.cert));
      expect(leaf.subjectAltName).toBe(`URI:${identity}`);
      expect(leaf.ca).toBe(false);
      expect(leaf.checkIssued(root)).toBe(true);
      expect(leaf.verify(root.publicKey)).toBe(true);
      expect(leaf.checkPrivateKey(createPrivateKey(await readFile(f.key)))).toBe(true);
      expect(Date.parse(leaf.validTo)).toBeGreaterThan(Date.now());
    }
  });

  it('dev-ca refuses a bad identity with a usage error', async () => {
    const bad = spawn([
      'dev-ca',
      '--out',
      join(mesh.dir, 'nope'),
      '--identity',
      'spiffe://cluster.local/shop/web',
    ]);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain('is not spiffe://TRUST_DOMAIN/ns/NS/sa/SA');
    const none = spawn(['dev-ca', '--identity', WEB_ID]);
    expect(await none.exited).toBe(2);
    expect(none.stderr()).toContain('--out is required');
  });

  it('carries a curl-like request: tunnel outbound → run → tunnel inbound → application', async () => {
    // The application, on the pod IP, plain HTTP.
    const seen: http.IncomingHttpHeaders[] = [];
    const app = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push(req.headers);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`web says hi to ${req.method} ${req.url} (${body.length} bytes)\n`);
      });
    });
    await new Promise<void>((r) => app.listen(8080, '127.0.65.11', () => r()));
    mesh.onClose(() => new Promise<void>((r) => app.close(() => r())));

    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'web',
          vip: '127.0.55.10',
          port: 80,
          targetPort: 8080,
          pods: [{ name: 'web-0', ip: '127.0.65.11', sa: 'web' }],
        }),
      ].join('---\n'),
    );

    const web = files(WEB_ID);
    const inbound = spawn([
      'tunnel',
      'inbound',
      '--listen',
      '127.0.65.11:15008',
      '--cert',
      web.cert,
      '--key',
      web.key,
      '--ca',
      web.ca,
    ]);
    const wpFiles = files(WAYPOINT_ID);
    const run = spawn([
      'run',
      '--config',
      mesh.configDir,
      '--gateway',
      'shop/waypoint',
      '--cert',
      wpFiles.cert,
      '--key',
      wpFiles.key,
      '--ca',
      wpFiles.ca,
      '--hbone',
      '127.25.0.7:15008',
      '--admin',
      '127.25.0.7:15000',
      '--ready',
      '127.25.0.7:15021',
      '--metrics',
      '127.25.0.7:15020',
    ]);
    const client = files(CLIENT_ID);
    const outbound = spawn([
      'tunnel',
      'outbound',
      '--listen',
      '127.0.55.1:18080',
      '--waypoint',
      '127.25.0.7:15008',
      '--waypoint-identity',
      WAYPOINT_ID,
      '--to',
      '127.0.55.10:80',
      '--cert',
      client.cert,
      '--key',
      client.key,
      '--ca',
      client.ca,
    ]);
    await Promise.all([
      inbound.waitForStderr(/"msg":"tunnel inbound listening"/),
      run.waitForStderr(/"msg":"waypoint listening"/),
      outbound.waitForStderr(/"msg":"tunnel outbound listening"/),
    ]);
    expect((await getText({ ip: '127.25.0.7', port: 15021 }, '/healthz/ready')).status).toBe(200);
    // The readiness port answers the probe and nothing else: the admin pages are on --admin only.
    expect((await getText({ ip: '127.25.0.7', port: 15021 }, '/config_dump')).status).toBe(404);
    expect((await getText({ ip: '127.25.0.7', port: 15000 }, '/config_dump')).status).toBe(200);

    const get = await curl({ ip: '127.0.55.1', port: 18080 }, '/hello?x=1');
    expect(get).toMatchObject({ status: 200, body: 'web says hi to GET /hello?x=1 (0 bytes)\n' });
    const post = await curl({ ip: '127.0.55.1', port: 18080 }, '/login', { method: 'POST', body: 'user=me' });
    expect(post).toMatchObject({ status: 200, body: 'web says hi to POST /login (7 bytes)\n' });
    // The application saw the request after the waypoint: a request id, the Host the client sent.
    expect(seen.at(-1)?.host).toBe('127.0.55.1:18080');
    expect(seen.at(-1)?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    const metrics = await getText({ ip: '127.25.0.7', port: 15020 }, '/stats/prometheus');
    expect(metrics.body).toMatch(
      /istio_requests_total\{[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/shop\/sa\/curl"[^}]*destination_service_name="web"[^}]*response_code="200"[^}]*\} 2/,
    );

    for (const p of [outbound, run, inbound]) p.child.kill('SIGTERM');
    expect(await Promise.all([outbound.exited, run.exited, inbound.exited])).toEqual([0, 0, 0]);
  });

  it('prints help on request (exit 0, stdout) and usage on mistakes (exit 2, stderr)', async () => {
    const [help, runHelp, bare, unknown, badFlag] = [
      spawn(['--help']),
      spawn(['run', '--help']),
      spawn([]),
      spawn(['serve']),
      spawn(['run', '--gatway', 'shop/waypoint']),
    ];
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toContain('Usage: node-waypoint <command>');
    // Every command is listed.
    for (const command of ['run', 'demo', 'explain', 'validate', 'dev-ca', 'tunnel'])
      expect(help.stdout()).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    expect(await runHelp.exited).toBe(0);
    expect(runHelp.stdout()).toContain('--drain-deadline SECONDS');
    expect(await bare.exited).toBe(2);
    expect(bare.stdout()).toBe('');
    expect(bare.stderr()).toContain('Usage: node-waypoint <command>');
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toMatch(
      /^node-waypoint: unknown command "serve"\n\nUsage: node-waypoint <command>/,
    );
    expect(await badFlag.exited).toBe(2);
    // The run command's own usage, once, after the complaint.
    expect(badFlag.stderr()).toMatch(
      /^node-waypoint: run: Unknown option '--gatway'.*\n\nUsage: node-waypoint run /s,
    );
    expect(badFlag.stderr().match(/Usage:/g)).toHaveLength(1);
  });

  it('tunnel says what it needs', async () => {
    const sideways = spawn(['tunnel', 'sideways']);
    expect(await sideways.exited).toBe(2);
    expect(sideways.stderr()).toContain('expected `outbound` or `inbound`');
    const missing = spawn(['tunnel', 'outbound', '--listen', '127.0.55.1:0']);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toContain('--cert is required');
  });
});

describe('node-waypoint demo (npm start)', () => {
  let demo: CliProcess;
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await TestMesh.create();
  });
  afterAll(() => mesh?.close());

  it('is what npm start runs', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    expect(pkg.scripts.start).toMatch(/^node (--\S+ )*bin\/node-waypoint\.js demo$/);
  });

  it('starts, prints curl commands that work, and exits 0 on SIGTERM', async () => {
    // config/demo with every 127.10.x.y moved to 127.25.(100+x).y, and the demo told where it now is.
    const demoYaml = await readFile(join(ROOT, 'config/demo/bank-of-anthos.yaml'), 'utf8');
    expect(demoYaml).toContain('127.10.1.');
    const moved = demoYaml.replace(
      /\b127\.10\.(\d+)\.(\d+)\b/g,
      (_, x: string, y: string) => `127.25.${100 + Number(x)}.${y}`,
    );
    const config = await mesh.writeConfig('bank-of-anthos.yaml', moved);
    demo = spawnCli(
      ['demo', '--config', config, '--waypoint-ip', '127.25.100.2', '--client-ip', '127.25.100.1'],
      {
        register: (fn) => mesh.onClose(fn),
      },
    );
    // One process starts about twenty servers and the waypoint: past 15 s on a loaded 2-core machine.
    const [, showcase] = await demo.waitForStdout(
      /^ {2}curl -s (http:\/\/127\.25\.100\.1:\d+)\/ +# frontend/m,
      30_000,
    );
    await demo.waitForStdout(/Ctrl-C to stop/);
    const out = demo.stdout();
    expect(out).toContain('readiness http://127.25.100.2:15021/healthz/ready');
    expect(out).toContain('admin     http://127.25.100.2:15000/');
    expect(out).toContain('curl -s http://127.25.100.2:15000/config_dump');
    expect(out).toContain(`curl -s -X POST --data hello ${showcase}/login`);
    expect(out).toContain('curl -s http://127.25.100.2:15020/stats/prometheus');
    // One line per Service, each with its own local address.
    const perService = [
      ...out.matchAll(/^ {2}(\S+) +(127\.25\.101\.\d+:\d+) +-> .* curl (http:\/\/\S+)\/$/gm),
    ];
    expect(perService.map((m) => m[1]).sort()).toEqual(
      [
        'balancereader',
        'balancereader-v1',
        'balancereader-v2',
        'contacts',
        'frontend',
        'ledgerwriter',
        'transactionhistory',
        'userservice',
      ].sort(),
    );

    expect((await getText({ ip: '127.25.100.2', port: 15021 }, '/healthz/ready')).status).toBe(200);
    expect((await getText({ ip: '127.25.100.2', port: 15000 }, '/config_dump')).status).toBe(200);
    const target = parseHostPort(showcase!.slice('http://'.length));
    const pods = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await curl(target, '/');
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as { service: string; pod: string };
      expect(body.service).toBe('frontend');
      pods.add(body.pod);
    }
    expect(pods.size).toBe(2);
    const post = await curl(target, '/login', { method: 'POST', body: 'hello' });
    expect(JSON.parse(post.body)).toMatchObject({
      service: 'frontend',
      method: 'POST',
      path: '/login',
      bodyBytes: 5,
    });
    // The demo's AuthorizationPolicy frontend-viewer lets sleep GET and POST /login only.
    const del = await curl(target, '/', { method: 'DELETE' });
    expect(del).toMatchObject({ status: 403, body: 'RBAC: access denied' });
    for (const m of perService) {
      const res = await curl(parseHostPort(m[3]!.slice('http://'.length)), '/ping');
      expect(res.status).toBe(200);
      // balancereader-v1 and -v2 select balancereader's own pods.
      expect(m[1]!.startsWith((JSON.parse(res.body) as { service: string }).service)).toBe(true);
    }
    // The canary: balancereader's HTTPRoute sends about 10% to the v2 pod.
    const balancereader = perService.find((m) => m[1] === 'balancereader')!;
    let v2 = 0;
    for (let i = 0; i < 200; i++) {
      const res = await curl(parseHostPort(balancereader[3]!.slice('http://'.length)), '/');
      if ((JSON.parse(res.body) as { pod: string }).pod.startsWith('balancereader-v2')) v2++;
    }
    // 10% of 200 is 20; 5 and 45 are more than 4 standard deviations away.
    expect(v2).toBeGreaterThan(5);
    expect(v2).toBeLessThan(45);
    // The access log (Istio format) shows up below the instructions.
    await demo.waitForStdout(/"POST \/login HTTP\/1\.1" 200 - via_upstream/);

    demo.child.kill('SIGTERM');
    expect(await demo.exited).toBe(0);
  }, 60_000);
});
