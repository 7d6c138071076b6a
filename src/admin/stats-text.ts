// /stats: every metric as `name{labels}: value` lines, sorted, as Envoy's plain /stats lists its
// counters and gauges (histograms give their _count and _sum). `filter` keeps the lines it matches.
import type { Registry } from 'prom-client';

export async function statsText(registry: Registry, filter?: RegExp): Promise<string> {
  const lines: string[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{
      metricName?: string;
      labels: Record<string, string | number>;
      value: number;
    }>) {
      const name = v.metricName ?? metric.name;
      if (name.endsWith('_bucket')) continue;
      const labels = Object.entries(v.labels)
        .map(([k, x]) => `${k}="${x}"`)
        .join(',');
      const line = `${name}${labels ? `{${labels}}` : ''}: ${v.value}`;
      if (!filter || filter.test(line)) lines.push(line);
    }
  }
  return `${lines.sort().join('\n')}\n`;
}
