// Certificate rotation on a running `node-waypoint run`: the --cert/--key files are replaced, as
// cert-manager or a Secret mount does; new HBONE connections see the new certificate, connections
// already open keep working, and a broken replacement leaves the last good certificate in force.
// Addresses: waypoint 127.25.0.6, VIP 127.0.54.10, pods 127.0.64.x.
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  id,
  serviceYaml,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';

const VIP = { ip: '127.0.54.10', port: 9080 };
const WAYPOINT_ID = id('shop', 'waypoint');

describe('certificate rotation', () => {
  let mesh: TestMesh;
  let wp: WaypointProcess & { files: { cert: string; key: string; ca: string } };
  let clientTls: { cert: string; key: string; ca: string };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'reviews',
          vip: VIP.ip,
          port: VIP.port,
          pods: [{ name: 'reviews-a', ip: '127.0.64.11' }],
        }),
      ].join('---\n'),
    );
    await mesh.pod('127.0.64.11', 9080, TestMesh.echoServer('reviews-a'), id('shop', 'reviews'));
    wp = await mesh.spawnRun({ hboneIp: '127.25.0.6' });
    clientTls = (await mesh.credentials(id('shop', 'productpage'))).tlsOptions();
  });
  afterAll(() => mesh?.close());

  /** A new HBONE connection to the waypoint, as ztunnel opens one. */
  const connect = async (): Promise<http2.ClientHttp2Session> => {
    const session = http2.connect(`https://${wp.hbone.ip}:${wp.hbone.port}`, {
      ...clientTls,
      ALPNProtocols: ['h2'],
      servername: '',
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => {});
    mesh.onClose(() => session.destroy());
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    return session;
  };
  const peerSerial = (session: http2.ClientHttp2Session): string =>
    (session.socket as TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
  const fileSerial = async (): Promise<string> =>
    new X509Certificate(await readFile(wp.files.cert)).serialNumber.toUpperCase();

  /** One HTTP/1.1 request in a new CONNECT tunnel on `session`; resolves with the status line and body. */
  const get = (session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const stream = session.request(
        { ':method': 'CONNECT', ':authority': `${VIP.ip}:${VIP.port}` },
        { endStream: false },
      );
      let raw = '';
      stream.on('response', (h) => {
        if (h[':status'] !== 200) reject(new Error(`CONNECT answered ${h[':status']}`));
        stream.write(
          `GET ${path} HTTP/1.1\r\nhost: reviews.shop.svc.cluster.local\r\nconnection: close\r\n\r\n`,
        );
      });
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (raw += d));
      stream.on('end', () => {
        stream.end();
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
        const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
        let body = raw.slice(head.length + 4);
        if (/^transfer-encoding: chunked$/im.test(head)) body = dechunk(body);
        resolve({ status, body });
      });
      stream.on('error', reject);
    });

  /** Writes new cert and key files the way a Secret mount update lands: each file replaced by rename. */
  const install = async (cert: string, key: string): Promise<void> => {
    await writeFile(`${wp.files.cert}.tmp`, cert);
    await writeFile(`${wp.files.key}.tmp`, key);
    await rename(`${wp.files.cert}.tmp`, wp.files.cert);
    await rename(`${wp.files.key}.tmp`, wp.files.key);
  };
  const reloadFailures = (): string[] =>
    wp
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"credentials: reload failed'))
      .map((l) => (JSON.parse(l) as { error: string }).error);

  let established: http2.ClientHttp2Session;
  let firstSerial: string;
  let secondSerial: string;

  it('serves the certificate from --cert', async () => {
    firstSerial = await fileSerial();
    established = await connect();
    expect(peerSerial(established)).toBe(firstSerial);
    const identity = (established.socket as TLSSocket).getPeerCertificate().subjectaltname;
    expect(identity).toContain(`URI:${WAYPOINT_ID}`);
    expect(await get(established, '/before')).toMatchObject({ status: 200 });
  });

  it('picks up replaced files without a restart; open connections keep working', async () => {
    const issued = await mesh.ca.issue(WAYPOINT_ID);
    secondSerial = new X509Certificate(issued.certChainPem).serialNumber.toUpperCase();
    expect(secondSerial).not.toBe(firstSerial);
    await install(issued.certChainPem, issued.keyPem);
    // Each worker reloads the files itself; a new connection may reach any of them.
    await wp.waitForEachWorker(
      new RegExp(`"msg":"credentials: reloaded"[^\\n]*"serial":"${secondSerial}"`, 'i'),
    );

    const fresh = await connect();
    expect(peerSerial(fresh)).toBe(secondSerial);
    expect(await get(fresh, '/after')).toMatchObject({ status: 200 });

    // The connection opened before the rotation is the same TLS session and still carries tunnels.
    expect(established.closed || established.destroyed).toBe(false);
    expect(peerSerial(established)).toBe(firstSerial);
    for (let i = 0; i < 3; i++) {
      const res = await get(established, `/still/${i}`);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ pod: 'reviews-a', path: `/still/${i}` });
    }
    expect(wp.child.exitCode).toBeNull();
  });

  it('logs a broken replacement and keeps the last good certificate', async () => {
    await writeFile(wp.files.cert, 'this is not a certificate\n');
    await eventually(() => reloadFailures().length >= 1, 'the reload failure in the log');
    expect(reloadFailures().at(-1)).toContain('certificate is not PEM X.509');
    expect(reloadFailures().at(-1)).toContain(wp.files.cert);

    const fresh = await connect();
    expect(peerSerial(fresh)).toBe(secondSerial);
    expect(await get(fresh, '/after-broken')).toMatchObject({ status: 200 });
    expect(await get(established, '/after-broken')).toMatchObject({ status: 200 });
  });

  it('refuses a key that does not match the certificate, and a certificate for another identity', async () => {
    const good = await mesh.ca.issue(WAYPOINT_ID);
    const other = await mesh.ca.issue(WAYPOINT_ID);
    // Half a rotation: a new certificate with some other key.
    await install(good.certChainPem, other.keyPem);
    await eventually(
      () => reloadFailures().some((e) => e.includes('private key does not match')),
      'key mismatch',
    );
    expect(peerSerial(await connect())).toBe(secondSerial);

    const stranger = await mesh.ca.issue(id('shop', 'someone-else'));
    await install(stranger.certChainPem, stranger.keyPem);
    await eventually(
      () => reloadFailures().some((e) => e.includes(`not ${WAYPOINT_ID}`)),
      'identity change refused',
    );
    const fresh = await connect();
    expect(peerSerial(fresh)).toBe(secondSerial);
    expect(await get(fresh, '/still-good')).toMatchObject({ status: 200 });

    // A good pair afterwards is taken.
    await install(good.certChainPem, good.keyPem);
    const thirdSerial = new X509Certificate(good.certChainPem).serialNumber.toUpperCase();
    await eventually(async () => peerSerial(await connect()) === thirdSerial, 'the third certificate');
  });

  it('uses the new certificate towards endpoints as well', async () => {
    // Endpoints check the waypoint's identity on every new HBONE connection it opens to them; traffic
    // keeps flowing after all the rotations above.
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, VIP);
    for (let i = 0; i < 3; i++) {
      const res = await pool.request({ method: 'GET', path: `/end/${i}` });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
  });
});

/** The payload of a chunked HTTP/1.1 body. */
function dechunk(raw: string): string {
  let out = '';
  let rest = raw;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
