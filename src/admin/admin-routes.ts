// The admin listener's pages, Envoy style (127.0.0.1:15000 by default: never the mesh's to reach):
// /config_dump, /clusters, /stats, /stats/prometheus, /server_info, /logging, /certs, /ready,
// /healthz/ready and POST /debug/explain. Each page reads live state through AdminSources.
import type http from 'node:http';
import type { ConfigMessage, Snapshot } from '../../config/model.ts';
import {
  checkExplainInput,
  ExplainDestinationError,
  type ExplainInput,
  ExplainInputError,
  type ExplainResult,
} from '../explain/explain.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Readiness } from '../lifecycle/readiness.ts';
import { type Logger, parseLogLevel } from '../observe/logger.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { EndpointPicker } from '../upstream/endpoint-picker.ts';
import type { Route } from './admin-server.ts';
import { certsPage } from './certs.ts';
import { clustersPage } from './clusters.ts';
import { configDump } from './config-dump.ts';
import { statsText } from './stats-text.ts';

export interface AdminSources {
  snapshot(): Snapshot | undefined;
  rejected(): readonly ConfigMessage[];
  /** Where the configuration comes from (files, a controller), for /config_dump. */
  configSource(): Record<string, unknown>;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  readonly picker: EndpointPicker;
  readonly credentials: Credentials;
  readonly log: Logger;
  /** /server_info: version, node id, the options the process runs with. */
  serverInfo(): { version: string; node: Record<string, string>; options: Record<string, unknown> };
  readonly startedAt: Date;
  explain(snapshot: Snapshot, input: ExplainInput): Promise<ExplainResult>;
}

type Reply = { status: number; type: string; body: string };
const text = (status: number, body: string): Reply => ({ status, type: 'text/plain', body });
const json = (status: number, v: unknown): Reply => ({
  status,
  type: 'application/json',
  body: `${JSON.stringify(v, null, 2)}\n`,
});

function query(req: http.IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://admin').searchParams;
}

/** /healthz/ready: what the kubelet probes, also the only page of the --ready listener. */
export function readyRoute(readiness: Readiness): Route {
  return () => {
    const why = readiness.notReadyBecause();
    return why ? text(503, `not ready: ${why}\n`) : text(200, 'ready\n');
  };
}

export function prometheusRoute(metrics: Metrics): Route {
  return async () => ({ status: 200, type: metrics.registry.contentType, body: await metrics.render() });
}

export function adminRoutes(src: AdminSources): Record<string, Route> {
  const state = (): string =>
    src.readiness.draining ? 'DRAINING' : src.readiness.notReadyBecause() ? 'PRE_INITIALIZING' : 'LIVE';
  return {
    'GET /': () => text(200, `${Object.keys(adminRoutes(src)).join('\n')}\n`),
    'GET /healthz/ready': readyRoute(src.readiness),
    'GET /ready': () => text(state() === 'LIVE' ? 200 : 503, `${state()}\n`),
    'GET /config_dump': () => ({
      status: 200,
      type: 'application/json',
      body: configDump(src.snapshot(), {
        ready: src.readiness.notReadyBecause() ?? 'ready',
        configSource: src.configSource(),
        rejected: src.rejected(),
      }),
    }),
    'GET /clusters': (req) => {
      const page = clustersPage(src.snapshot(), src.picker, src.metrics.hosts);
      return query(req).get('format') === 'json' ? json(200, page.json) : text(200, page.text);
    },
    'GET /stats': statsRoute(src.metrics),
    'GET /stats/prometheus': prometheusRoute(src.metrics),
    'GET /server_info': () => serverInfo(src, state()),
    'GET /logging': () => text(200, `active level: ${src.log.level?.() ?? 'info'}\n`),
    'POST /logging': loggingRoute(src.log),
    'GET /certs': () => json(200, certsPage(src.credentials)),
    'POST /debug/explain': explainRoute(src),
  };
}

/** Envoy's /stats: every counter and gauge as `name: value`, `?filter=REGEX` to narrow them. */
function statsRoute(metrics: Metrics): Route {
  return async (req) => {
    const filter = query(req).get('filter');
    let re: RegExp | undefined;
    try {
      re = filter ? new RegExp(filter) : undefined;
    } catch {
      return text(400, `filter: not a regular expression: ${filter}\n`);
    }
    return text(200, await statsText(metrics.registry, re));
  };
}

function serverInfo(src: AdminSources, state: string): Reply {
  const info = src.serverInfo();
  const uptime = String(Math.floor((Date.now() - src.startedAt.getTime()) / 1000));
  return json(200, {
    version: info.version,
    state,
    uptime_current_epoch: `${uptime}s`,
    uptime_all_epochs: `${uptime}s`,
    node: info.node,
    command_line_options: info.options,
  });
}

/** POST /logging?level=L: the log level of the whole process, at runtime. */
function loggingRoute(log: AdminSources['log']): Route {
  return (req) => {
    const level = query(req).get('level');
    if (!level) return text(400, 'usage: POST /logging?level=debug|info|warn|error\n');
    try {
      log.setLevel?.(parseLogLevel(level));
    } catch (err) {
      return text(400, `${(err as Error).message}\n`);
    }
    log.info('admin: log level changed', { log_level: level });
    return text(200, `active level: ${level}\n`);
  };
}

/** What the waypoint would decide for a hypothetical request, on the snapshot in force. */
function explainRoute(src: AdminSources): Route {
  return async (_req, body) => {
    const snapshot = src.snapshot();
    if (!snapshot) return json(503, { error: 'no configuration applied yet' });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return json(400, { error: 'body: expected JSON' });
    }
    try {
      return json(200, await src.explain(snapshot, checkExplainInput(parsed)));
    } catch (err) {
      if (err instanceof ExplainInputError) return json(400, { error: err.message });
      if (err instanceof ExplainDestinationError) return json(404, { error: err.message });
      throw err;
    }
  };
}
