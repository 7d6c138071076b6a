// Every command's --help lists exactly the flags its parser takes: the usage texts are written by
// hand (usage.ts, so --help loads no command), and this keeps them from drifting from the specs.
import { describe, expect, it } from 'vitest';
import { CONTROLLER_OPTIONS } from './controller.ts';
import { DEMO_OPTIONS } from './demo.ts';
import { DEV_CA_OPTIONS } from './dev-ca.ts';
import { EXPLAIN_OPTIONS } from './explain.ts';
import { RUN_OPTIONS } from './run.ts';
import { TUNNEL_OPTIONS } from './tunnel.ts';
import {
  CONTROLLER_USAGE,
  DEMO_USAGE,
  DEV_CA_USAGE,
  EXPLAIN_USAGE,
  RUN_USAGE,
  TUNNEL_USAGE,
  VALIDATE_USAGE,
} from './usage.ts';
import { VALIDATE_OPTIONS } from './validate.ts';

/** Every --flag a usage text names (camelCase words such as Istio's --proxyLogLevel are not ours). */
function documented(usage: string): string[] {
  return [...new Set([...usage.matchAll(/--([a-z][a-z0-9-]*)(?![a-zA-Z])/g)].map((m) => m[1]!))].sort();
}

/** The flags a parseArgs spec takes, -h/--help aside (every command has it). */
const accepted = (spec: object): string[] =>
  Object.keys(spec)
    .filter((k) => k !== 'help')
    .sort();

describe('usage texts', () => {
  it.each([
    ['run', RUN_USAGE, RUN_OPTIONS],
    ['demo', DEMO_USAGE, DEMO_OPTIONS],
    ['dev-ca', DEV_CA_USAGE, DEV_CA_OPTIONS],
    ['explain', EXPLAIN_USAGE, EXPLAIN_OPTIONS],
    ['validate', VALIDATE_USAGE, VALIDATE_OPTIONS],
    ['controller', CONTROLLER_USAGE, CONTROLLER_OPTIONS],
  ])('%s --help names every flag it takes, and no other', (_command, usage, spec) => {
    // run's usage also shows Istio's `proxy waypoint --domain …`, which `proxy` maps onto run's flags.
    expect(documented(usage).filter((f) => f !== 'domain')).toEqual(accepted(spec));
  });

  it('tunnel --help names every flag either direction takes', () => {
    expect(documented(TUNNEL_USAGE)).toEqual(accepted(TUNNEL_OPTIONS));
  });
});
