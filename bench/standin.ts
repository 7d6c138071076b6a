// The ztunnel stand-ins as a bench child process, from src/ztunnel: role "inbound" terminates HBONE
// on the pod's IP:15008 (the destination node's ztunnel); role "outbound" accepts plain TCP on each
// listener and carries every connection in an HBONE tunnel (the source node's ztunnel), either to
// the waypoint or, for the tunnel floor, straight to the pod's inbound stand-in.
import { readFileSync } from 'node:fs';
import { memoryCredentials } from '../src/identity/credentials.ts';
import { InboundTunnel } from '../src/ztunnel/inbound.ts';
import { OutboundTunnel } from '../src/ztunnel/outbound.ts';
import { announceReady, childConfig, exitWithParent } from './child.ts';

interface Addr {
  readonly ip: string;
  readonly port: number;
}

interface StandinConfig {
  readonly role: 'inbound' | 'outbound';
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  /** inbound */
  readonly listen?: Addr;
  /** outbound */
  readonly listeners?: ReadonlyArray<{
    readonly name: string;
    readonly listen: Addr;
    readonly waypoint: Addr;
    readonly waypointIdentity: string;
    readonly destination: Addr;
  }>;
}

// Warnings and errors on stderr (the bench keeps them in bench/out/); nothing per request.
const write =
  (level: string) =>
  (msg: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
  };
const log = {
  debug() {},
  info() {},
  warn: write('warn'),
  error: write('error'),
  child: () => log,
};

const cfg = childConfig<StandinConfig>();
const credentials = memoryCredentials({
  cert: readFileSync(cfg.cert, 'utf8'),
  key: readFileSync(cfg.key, 'utf8'),
  ca: readFileSync(cfg.ca, 'utf8'),
});

if (cfg.role === 'inbound') {
  const inbound = new InboundTunnel({ listen: cfg.listen!, credentials, log });
  const bound = await inbound.listen();
  announceReady({ role: 'inbound', listen: `${bound.ip}:${bound.port}` });
  exitWithParent(() => inbound.close());
} else {
  const tunnels: OutboundTunnel[] = [];
  const bound: Record<string, string> = {};
  for (const l of cfg.listeners ?? []) {
    const t = new OutboundTunnel({
      listen: l.listen,
      waypoint: l.waypoint,
      waypointIdentity: l.waypointIdentity,
      destination: l.destination,
      credentials,
      log,
    });
    const a = await t.listen();
    bound[l.name] = `${a.ip}:${a.port}`;
    tunnels.push(t);
  }
  announceReady({ role: 'outbound', listeners: bound });
  exitWithParent(() => Promise.all(tunnels.map((t) => t.close())));
}
