// The config stream's metrics, on the controller's registry: who is connected, how long a change
// takes to be applied, what is sent, and what waypoints refuse.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const byRegistry = new WeakMap<Registry, StreamMetrics>();

/** One set per registry, so a server restarted on the same registry counts on. */
export function streamMetrics(registry: Registry): StreamMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = new StreamMetrics(registry);
    byRegistry.set(registry, m);
  }
  return m;
}

export class StreamMetrics {
  readonly connected: Gauge<'gateway'>;
  readonly refused: Counter<'reason'>;
  readonly pushes: Counter<'gateway' | 'type'>;
  readonly pushLatency: Histogram<'type'>;
  readonly sentBytes: Counter<'gateway'>;
  readonly sentObjects: Counter<'gateway' | 'op'>;
  readonly nacks: Counter<'gateway'>;
  readonly rejectedResources: Counter<'gateway'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connected = new Gauge({
      name: 'waypoint_controller_connected_waypoints',
      help: 'Config streams open, by waypoint Gateway',
      labelNames: ['gateway'],
      registers,
    });
    this.refused = new Counter({
      name: 'waypoint_controller_streams_refused_total',
      help: 'Config streams refused: permission_denied, invalid_argument, not_synced',
      labelNames: ['reason'],
      registers,
    });
    this.pushes = new Counter({
      name: 'waypoint_controller_pushes_total',
      help: 'Pushes sent, full snapshots and deltas',
      labelNames: ['gateway', 'type'],
      registers,
    });
    this.pushLatency = new Histogram({
      name: 'waypoint_controller_push_latency_seconds',
      help: 'From the first change of a push (or the stream opening) to the waypoint acknowledging it',
      labelNames: ['type'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.sentBytes = new Counter({
      name: 'waypoint_controller_sent_bytes_total',
      help: 'Document bytes (Kubernetes JSON) sent, by waypoint Gateway',
      labelNames: ['gateway'],
      registers,
    });
    this.sentObjects = new Counter({
      name: 'waypoint_controller_sent_objects_total',
      help: 'Documents sent (upsert) and keys removed (remove), by waypoint Gateway',
      labelNames: ['gateway', 'op'],
      registers,
    });
    this.nacks = new Counter({
      name: 'waypoint_controller_nacks_total',
      help: 'Pushes a waypoint applied only in part (some resources rejected)',
      labelNames: ['gateway'],
      registers,
    });
    this.rejectedResources = new Counter({
      name: 'waypoint_controller_rejected_resources_total',
      help: 'Resources the waypoints rejected, summed over NACKs',
      labelNames: ['gateway'],
      registers,
    });
  }
}
