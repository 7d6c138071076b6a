// `run`'s flags, parsed in this process: every malformed value fails with a usage error naming the
// flag before anything is read or bound (test/e2e/run.test.ts proves the exit code 2 once).
import { expect, it } from 'vitest';
import { UsageError } from './flags.ts';
import { runSettings } from './run.ts';

const FILES = ['--cert', 'c.pem', '--key', 'k.pem', '--ca', 'ca.pem'];
const BASE = ['--config', 'cfg', ...FILES];

it.each([
  [['--gateway', 'shop'], /--gateway: expected NAMESPACE\/NAME/],
  [['--gateway', 'shop/waypoint', '--hbone', 'localhost'], /--hbone: expected IP:PORT/],
  [['--gateway', 'shop/waypoint', '--admin', '127.0.0.1:99999'], /--admin: expected IP:PORT/],
  [['--gateway', 'shop/waypoint', '--log-level', 'loud'], /--log-level: log level must be one of/],
  [['--gateway', 'shop/waypoint', '--access-log', 'some'], /--access-log must be/],
  [['--gateway', 'shop/waypoint', '--drain-deadline', 'soon'], /--drain-deadline: expected seconds/],
  [['--gateway', 'shop/waypoint', '--endpoint-hbone-port', '0'], /--endpoint-hbone-port: expected a port/],
  [
    ['--gateway', 'shop/waypoint', '--max-pending-heads', '1.5'],
    /--max-pending-heads: expected a whole number/,
  ],
  [['--gateway', 'shop/waypoint', '--default-retry', 'always'], /--default-retry: expected istio or safe/],
  [['--gateway', 'shop/waypoint', '--redis-url', 'http://r:6379'], /--redis-url: expected redis:\/\//],
  [
    ['--gateway', 'shop/waypoint', '--redis-failure-mode', 'maybe'],
    /--redis-failure-mode: expected open or closed/,
  ],
  [['--gateway', 'shop/waypoint', '--controller-identity', 'ctl'], /--controller-identity: expected spiffe:/],
  [[], /run: --gateway is required/],
])('refuses %j', async (args, message) => {
  const err = await runSettings([...BASE, ...args], {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect((err as Error).message).toMatch(message);
});

it('refuses an unknown flag (parseArgs: main turns it into exit 2)', async () => {
  await expect(
    runSettings([...BASE, '--gateway', 'shop/waypoint', '--gatway', 'x'], {}),
  ).rejects.toMatchObject({
    code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
  });
});

it('needs --config or --controller, and not both', async () => {
  await expect(runSettings([...FILES, '--gateway', 'a/b'], {})).rejects.toThrow(/--config is required/);
  await expect(
    runSettings([...BASE, '--gateway', 'a/b', '--controller', '127.0.0.1:15012'], {}),
  ).rejects.toThrow(/exclude each other/);
});

it('reads WAYPOINT_* variables, lets flags win, and fills in the defaults', async () => {
  const env = {
    WAYPOINT_CONFIG: 'a,b',
    WAYPOINT_GATEWAY: 'nowhere/nothing',
    WAYPOINT_HBONE: '127.0.0.1:1',
    WAYPOINT_DRAIN_DEADLINE: '2s',
    WAYPOINT_LOG_LEVEL: 'warn',
  };
  const s = (await runSettings([...FILES, '--gateway', 'shop/waypoint'], env))!;
  expect(s.logLevel).toBe('warn');
  expect(s.options).toMatchObject({
    configPaths: ['a', 'b'],
    gateway: { namespace: 'shop', name: 'waypoint' },
    hbone: { host: '127.0.0.1', port: 1 },
    admin: { host: '127.0.0.1', port: 15000 },
    ready: { host: '0.0.0.0', port: 15021 },
    metrics: { host: '0.0.0.0', port: 15020 },
    endpointHbonePort: 15008,
    clusterDomain: 'cluster.local',
    clusterId: 'Kubernetes',
    drainDeadlineMs: 2_000,
    streamIdleTimeoutMs: 300_000,
    requestHeadTimeoutMs: 10_000,
    maxPendingHeadsPerIdentity: 64,
    defaultRetry: 'istio',
    redisFailureMode: 'open',
    accessLogEncoding: 'text',
  });
  expect(s.identity).toEqual({ kind: 'files', cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' });
  expect(s.controller).toBeUndefined();
});

it("takes the gateway from Istio's template environment when no flag names it", async () => {
  const s = (await runSettings(BASE, { POD_NAMESPACE: 'shop', ISTIO_META_WORKLOAD_NAME: 'waypoint' }))!;
  expect(s.options.gateway).toEqual({ namespace: 'shop', name: 'waypoint' });
});

it('returns nothing for --help', async () => {
  expect(await runSettings(['--help'], {})).toBeUndefined();
});
