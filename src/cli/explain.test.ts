// explain's usage errors, in this process: each is refused before any configuration is read
// (test/e2e/explain.test.ts proves the exit codes on real configurations).
import { expect, it } from 'vitest';
import { runExplain } from './explain.ts';
import { UsageError } from './flags.ts';

const SLEEP = 'spiffe://cluster.local/ns/shop/sa/sleep';

it.each([
  [['--gateway', 'shop/waypoint', '--from', SLEEP, '--to', 'api.shop:8080'], /explain: --config is required/],
  [['--config', 'nowhere', '--from', SLEEP, '--to', 'api.shop:8080'], /explain: --gateway is required/],
  [['--config', 'nowhere', '--gateway', 'shop', '--from', SLEEP], /--gateway: expected NAMESPACE\/NAME/],
  [
    ['--config', 'nowhere', '--gateway', 'shop/waypoint', '--to', 'api.shop:8080'],
    /explain: --from is required/,
  ],
  [['--config', 'nowhere', '--gateway', 'shop/waypoint', '--from', SLEEP], /explain: --to is required/],
  [
    ['--config', 'nowhere', '--gateway', 'shop/waypoint', '--from', 'shop/sleep', '--to', 'a.b:1'],
    /--from: expected spiffe:/,
  ],
  [
    ['--config', 'nowhere', '--gateway', 'shop/waypoint', '--from', SLEEP, '--to', 'a.b:1', '-H', 'novalue'],
    /-H: expected NAME:VALUE/,
  ],
])('refuses %j', async (args, message) => {
  const err = await runExplain(args, {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect((err as Error).message).toMatch(message);
});

it('takes --config and --gateway from WAYPOINT_CONFIG and WAYPOINT_GATEWAY', async () => {
  const env = { WAYPOINT_CONFIG: 'nowhere', WAYPOINT_GATEWAY: 'shop/waypoint' };
  await expect(runExplain(['--from', SLEEP], env)).rejects.toThrow(/explain: --to is required/);
});
