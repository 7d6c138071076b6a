// gRPC replies as they look on the wire, through the waypoint and the ztunnel stand-ins: a
// node:http2 server that answers trailers-only, a server written frame by frame that sends
// HEADERS, DATA and trailers in one socket write, and the waypoint's own local replies. Seen by
// grpc-js, grpcio (C-core) and nghttp (libnghttp2, which shows each frame it received).
// Addresses: waypoint 127.0.236.3, VIPs 127.0.236.2x, pods 127.0.237.2x, clients 127.0.238.2x.
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPort } from '../../src/hbone/authority.ts';
import { encodeGrpcMessage } from '../../src/proxy/grpc-status.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { grpcJsCalls } from '../helpers/grpc-js-peer.ts';
import { grpcioCalls, grpcioMissing } from '../helpers/grpcio.ts';
import { frameServer, oneWriteReply } from '../helpers/h2-frames.ts';
import { getText, id, metricValue, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { type Frame, grpcMessage, nghttpGrpc, nghttpMissing } from '../helpers/nghttp.ts';

const WAYPOINT_IP = '127.0.236.3';
const TRAILERS_ONLY = { vip: '127.0.236.20', pod: '127.0.237.20' };
const ONE_WRITE = { vip: '127.0.236.21', pod: '127.0.237.21' };
const GONE = { vip: '127.0.236.22', pod: '127.0.237.22' };
const PORT = 50051;

const noGrpcio = grpcioMissing();
const noNghttp = nghttpMissing();
if (noGrpcio) console.warn(`grpc-wire: grpcio tests skipped: ${noGrpcio}`);
if (noNghttp) console.warn(`grpc-wire: nghttp tests skipped: ${noNghttp}`);

/**
 * A node:http2 server whose every reply is trailers-only: `fail:N` → grpc-status N; with
 * `x-fail-early: N`, at once, before the request has ended (as a server refusing a stream of messages).
 */
function trailersOnlyServer(): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const early = headers['x-fail-early'] as string | undefined;
    if (early) {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': early },
        { endStream: true },
      );
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const text = Buffer.concat(chunks).subarray(5).toString();
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': text.slice(5),
          'grpc-message': encodeGrpcMessage(`failing as asked: ${text}`),
        },
        { endStream: true },
      );
    });
  });
  return server;
}

/** The frame-by-frame server: `ok:X` → X, with trailers, the whole reply in one write. */
function oneWrite(stream: number, text: string): Buffer {
  return oneWriteReply(stream, text.slice(3), { 'grpc-status': '0', 'x-trailer': 'done' });
}

describe('gRPC replies on the wire through the waypoint', () => {
  let mesh: TestMesh;
  let dir: string;
  let waypoint: Waypoint;
  const targets = new Map<string, HostPort>();

  beforeAll(async () => {
    mesh = await TestMesh.create();
    dir = await mkdtemp(join(tmpdir(), 'grpc-wire-'));
    mesh.onClose(() => rm(dir, { recursive: true, force: true }));
    const svc = (name: string, s: { vip: string; pod: string }, ready = true) =>
      serviceYaml({
        name,
        vip: s.vip,
        port: PORT,
        portName: 'grpc',
        pods: [{ name: `${name}-a`, ip: s.pod, ready }],
      });
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        svc('trailers-only', TRAILERS_ONLY),
        svc('one-write', ONE_WRITE),
        svc('gone', GONE, false),
      ].join('---\n'),
    );
    const h2 = trailersOnlyServer();
    await new Promise<void>((r) => h2.listen(PORT, TRAILERS_ONLY.pod, () => r()));
    mesh.onClose(() => new Promise((r) => h2.close(r)));
    const raw = await frameServer(ONE_WRITE.pod, PORT, oneWrite);
    mesh.onClose(() => new Promise((r) => raw.close(r)));
    await mesh.standIn(TRAILERS_ONLY.pod, id('shop', 'trailers-only'));
    await mesh.standIn(ONE_WRITE.pod, id('shop', 'one-write'));
    waypoint = await mesh.startWaypoint({ ip: WAYPOINT_IP });
    let n = 20;
    for (const [name, s] of Object.entries({
      'trailers-only': TRAILERS_ONLY,
      'one-write': ONE_WRITE,
      gone: GONE,
    })) {
      targets.set(
        name,
        await mesh.outbound({
          listen: { ip: `127.0.238.${n++}`, port: 0 },
          waypoint: waypoint.addresses!.hbone,
          destination: { ip: s.vip, port: PORT },
          identity: id('shop', 'frontend'),
        }),
      );
    }
  });
  afterAll(() => mesh?.close());

  const nghttp = (service: string, text: string): Promise<Frame[]> =>
    nghttpGrpc(targets.get(service)!, '/interop.Echo/Unary', text, dir);

  it('relays a trailers-only error to grpc-js', async () => {
    const results = await grpcJsCalls(targets.get('trailers-only')!, ['fail:5', 'fail:9'], 5);
    expect(results.map((r) => [r.code, r.details])).toEqual([
      ['NOT_FOUND', 'failing as asked: fail:5'],
      ['FAILED_PRECONDITION', 'failing as asked: fail:9'],
    ]);
    // Metrics carry the status from the trailers-only head, as an upstream reply (not a local one).
    const scrape = (await getText(waypoint.addresses!.metrics, '/stats/prometheus')).body;
    const labels = { destination_service_name: 'trailers-only', response_code: '200', response_flags: '-' };
    expect(
      metricValue(scrape, 'istio_requests_total', { ...labels, grpc_response_status: '5' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(scrape, 'istio_requests_total', { ...labels, grpc_response_status: '9' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(noGrpcio)(
    `relays a trailers-only error to grpcio${noGrpcio ? ` (skipped: ${noGrpcio})` : ''}`,
    async () => {
      const [r] = await grpcioCalls(targets.get('trailers-only')!, ['fail:5'], 5);
      expect([r!.code, r!.details]).toEqual(['NOT_FOUND', 'failing as asked: fail:5']);
    },
  );

  it.skipIf(noNghttp)(
    `forwards a trailers-only reply as one HEADERS frame with END_STREAM${noNghttp ? ` (skipped: ${noNghttp})` : ''}`,
    async () => {
      const frames = await nghttp('trailers-only', 'fail:5');
      expect(frames.map((f) => [f.type, f.endStream])).toEqual([['HEADERS', true]]);
      expect(frames[0]!.headers).toMatchObject({ ':status': '200', 'grpc-status': '5' });
    },
  );

  it('keeps trailers that came in the same read as the last DATA (grpc-js, 300 calls)', async () => {
    const requests = Array.from({ length: 300 }, (_, i) => `ok:m${i}`);
    const results = await grpcJsCalls(targets.get('one-write')!, requests, 10);
    for (const [i, r] of results.entries())
      expect(r).toMatchObject({ code: 'OK', reply: `m${i}`, trailing: { 'x-trailer': 'done' } });
  });

  it.skipIf(noGrpcio)(
    `keeps trailers that came in the same read as the last DATA (grpcio)${noGrpcio ? ` (skipped: ${noGrpcio})` : ''}`,
    async () => {
      const requests = Array.from({ length: 100 }, (_, i) => `ok:m${i}`);
      const results = await grpcioCalls(targets.get('one-write')!, requests, 10);
      for (const [i, r] of results.entries())
        expect(r).toMatchObject({ code: 'OK', reply: `m${i}`, trailing: { 'x-trailer': 'done' } });
    },
  );

  it.skipIf(noNghttp)(
    `sends trailers as the last HEADERS frame, after the DATA${noNghttp ? ` (skipped: ${noNghttp})` : ''}`,
    async () => {
      const frames = await nghttp('one-write', 'ok:hello');
      expect(frames.map((f) => [f.type, f.endStream])).toEqual([
        ['HEADERS', false],
        ['DATA', false],
        ['HEADERS', true],
      ]);
      expect(frames[1]!.length).toBe(5 + 'hello'.length);
      expect(frames[2]!.headers).toEqual({ 'grpc-status': '0', 'x-trailer': 'done' });
    },
  );

  it.skipIf(noNghttp)(
    `answers a local reply as one HEADERS frame with END_STREAM${noNghttp ? ` (skipped: ${noNghttp})` : ''}`,
    async () => {
      const frames = await nghttp('gone', 'ok:anyone?');
      expect(frames.map((f) => [f.type, f.endStream])).toEqual([['HEADERS', true]]);
      expect(frames[0]!.headers).toMatchObject({
        ':status': '200',
        'content-type': 'application/grpc',
        'grpc-status': '14',
        'grpc-message': 'no healthy upstream',
        'x-waypoint-reason': 'no_healthy_upstream',
      });
    },
  );

  it('closes a request still sending when its trailers-only reply is complete (RST_STREAM NO_ERROR)', async () => {
    const t = targets.get('trailers-only')!;
    const session = http2.connect(`http://${t.ip}:${t.port}`);
    session.on('error', () => {});
    mesh.onClose(() => session.destroy());
    const req = session.request({
      ':method': 'POST',
      ':path': '/interop.Echo/Unary',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-fail-early': '8',
    });
    req.write(grpcMessage('first of many'));
    const [headers, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((r) =>
      req.once('response', (h, f) => r([h, f])),
    );
    expect(headers['grpc-status']).toBe('8');
    expect(flags & http2.constants.NGHTTP2_FLAG_END_STREAM).not.toBe(0);
    req.resume();
    // The client never ends its request: the waypoint ends the stream (as Envoy does), so the
    // request does not stay in flight (and hold up a drain) until the client gives up.
    await new Promise<void>((r) => req.once('close', () => r()));
    expect(req.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });
});
