// One scrape for the replica: every worker's registry (as getMetricsAsJSON) plus the primary's own,
// merged with prom-client's AggregatorRegistry. Counters and histograms add up; so do the gauges of
// things each worker holds (sessions, connections). The gauges that are a state of the whole
// replica take the worker that says most (draining, shedding) or least (the config version all have).
import client, { type Registry } from 'prom-client';

export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number] & { aggregator?: string };

const AGGREGATOR: Readonly<Record<string, string>> = {
  waypoint_draining: 'max',
  waypoint_overload_heap_shedding: 'max',
  waypoint_config_version: 'min',
  waypoint_build_info: 'first',
};

export function aggregate(registries: ReadonlyArray<readonly MetricJson[]>): Registry {
  const withOverrides = registries.map((metrics) =>
    metrics.map((m) => (AGGREGATOR[m.name] ? { ...m, aggregator: AGGREGATOR[m.name] } : m)),
  );
  return client.AggregatorRegistry.aggregate(withOverrides as never);
}
