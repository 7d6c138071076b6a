// The `run` flags of the overload limits (src/lifecycle/overload.ts), each with WAYPOINT_<FLAG>.
import type { OverloadLimits } from '../lifecycle/overload.ts';
import { DEFAULT_OVERLOAD_LIMITS } from '../lifecycle/overload.ts';
import { fromEnv, UsageError } from './flags.ts';

export const OVERLOAD_FLAGS = {
  'max-connections': { type: 'string' },
  'max-tunnels-per-connection': { type: 'string' },
  'max-tunnels': { type: 'string' },
  'max-pending-requests': { type: 'string' },
  'max-request-headers-kb': { type: 'string' },
  'max-replay-buffer-kb': { type: 'string' },
  'heap-high-water': { type: 'string' },
  'heap-low-water': { type: 'string' },
  'heap-max-mb': { type: 'string' },
} as const;

export type OverloadFlagValues = { [K in keyof typeof OVERLOAD_FLAGS]?: string | undefined };

export interface OverloadSettings {
  readonly overload: OverloadLimits;
  readonly maxRequestHeadersBytes: number;
  readonly maxReplayBufferBytes: number;
}

export function overloadSettings(values: OverloadFlagValues, env: NodeJS.ProcessEnv): OverloadSettings {
  const d = DEFAULT_OVERLOAD_LIMITS;
  const int = (name: keyof OverloadFlagValues, fallback: number, min: number): number => {
    const text = fromEnv(name, values[name], env, String(fallback))!;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${name}: expected an integer >= ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  const fraction = (name: keyof OverloadFlagValues, fallback: number): number => {
    const text = fromEnv(name, values[name], env, String(fallback))!;
    const n = Number(text);
    if (!(n > 0 && n <= 1))
      throw new UsageError(`--${name}: expected a fraction in (0, 1], got ${JSON.stringify(text)}`);
    return n;
  };
  const heapHighWater = fraction('heap-high-water', d.heapHighWater);
  const heapLowWater = fraction('heap-low-water', d.heapLowWater);
  if (heapLowWater > heapHighWater)
    throw new UsageError(
      `--heap-low-water (${heapLowWater}) must not be above --heap-high-water (${heapHighWater})`,
    );
  return {
    overload: {
      maxConnections: int('max-connections', d.maxConnections, 1),
      maxTunnelsPerConnection: int('max-tunnels-per-connection', d.maxTunnelsPerConnection, 1),
      maxTunnels: int('max-tunnels', d.maxTunnels, 1),
      maxPendingRequests: int('max-pending-requests', d.maxPendingRequests, 1),
      heapHighWater,
      heapLowWater,
      heapMaxBytes: int('heap-max-mb', 0, 0) * 1024 * 1024,
      heapIntervalMs: d.heapIntervalMs,
    },
    maxRequestHeadersBytes: int('max-request-headers-kb', 60, 1) * 1024,
    maxReplayBufferBytes: int('max-replay-buffer-kb', 64, 0) * 1024,
  };
}
