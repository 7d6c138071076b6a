// Istio 1.22–1.25 can only swap the image (`sidecar.istio.io/proxyImage`), so the container still
// gets the template's `proxy waypoint --domain NS.svc.cluster.local --serviceCluster … --proxyLogLevel …
// --proxyComponentLogLevel … --log_output_level …`. Those become `run` flags; the rest (Envoy's and
// pilot-agent's) are ignored, and everything else comes from the template's environment. Envoy's
// worker count becomes --concurrency: pilot-agent's --concurrency, else ProxyConfig's `concurrency`
// (the template's PROXY_CONFIG; 0 means every core of the machine), else run's default (the
// container's CPU quota, as pilot-agent derives it when ProxyConfig leaves it unset).
import { availableParallelism } from 'node:os';
import { UsageError } from './flags.ts';

const LOG_LEVELS: Record<string, string> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'error',
  off: 'error',
};

/** `waypoint …` (after `proxy`) → `run` argv. Flags take `--f v` or `--f=v`. */
export function runArgsOfIstioProxy(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const [kind, ...rest] = argv;
  if (kind !== 'waypoint')
    throw new UsageError(
      `proxy: only \`proxy waypoint\` (Istio's waypoint template) is understood, got ${JSON.stringify(kind)}`,
    );
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) values.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) values.set(arg.slice(2), rest[++i]!);
  }
  const out: string[] = [];
  // --domain NS.svc.cluster.local: the cluster domain is what follows `.svc.`.
  const domain = values.get('domain')?.split('.svc.')[1];
  if (domain) out.push('--cluster-domain', domain);
  const level = LOG_LEVELS[values.get('proxyLogLevel') ?? ''];
  if (level) out.push('--log-level', level);
  const workers = concurrencyOf(values.get('concurrency'), env.PROXY_CONFIG);
  if (workers !== undefined) out.push('--concurrency', String(workers));
  return out;
}

/** Envoy's worker count as pilot-agent would set it; undefined: leave it to run's default. */
function concurrencyOf(flag: string | undefined, proxyConfig: string | undefined): number | undefined {
  const fromFlag = Number(flag);
  if (Number.isInteger(fromFlag) && fromFlag > 0) return fromFlag;
  const configured = proxyConfigConcurrency(proxyConfig);
  if (configured === 0) return availableParallelism();
  return configured;
}

/** ProxyConfig's `concurrency` from PROXY_CONFIG's JSON (istiod wrote it; anything odd is left out). */
function proxyConfigConcurrency(json: string | undefined): number | undefined {
  if (!json) return undefined;
  try {
    const n = (JSON.parse(json) as { concurrency?: unknown }).concurrency;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
