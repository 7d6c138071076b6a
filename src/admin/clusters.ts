// /clusters, Envoy style: each Service port's cluster (Istio's waypoint name) with its endpoints,
// their health flags (EDS readiness, outlier ejection), active requests and request/connection
// counts; as Envoy's `cluster::host::stat::value` lines, or JSON with ?format=json.
import type { Endpoint, Snapshot } from '../../config/model.ts';
import type { HostStats } from '../observe/host-stats.ts';
import { clusterName } from '../upstream/cluster.ts';
import type { EndpointPicker } from '../upstream/endpoint-picker.ts';
import { hostKey } from '../upstream/load-balancer.ts';

export interface HostView {
  address: string;
  pod: string | undefined;
  health_flags: string;
  rq_active: number;
  rq_total: number;
  rq_error: number;
  cx_total: number;
}

export interface ClusterView {
  name: string;
  service: string;
  hosts: HostView[];
}

function healthFlags(e: Endpoint, ejected: boolean): string {
  const flags: string[] = [];
  if (ejected) flags.push('/failed_outlier_check');
  if (e.terminating) flags.push('/eds_status_draining');
  else if (!e.ready) flags.push('/failed_eds_health');
  return flags.length > 0 ? flags.join('') : 'healthy';
}

export function clusterViews(
  snapshot: Snapshot | undefined,
  picker: EndpointPicker,
  hosts: HostStats,
): ClusterView[] {
  const out = new Map<string, ClusterView>();
  for (const b of snapshot?.services.values() ?? []) {
    const name = clusterName(b.port, undefined, b.service.hostname, b.protocol);
    if (out.has(name)) continue;
    const views = b.endpoints.map((e): HostView => {
      const address = hostKey(e);
      const counts = hosts.counts(address);
      return {
        address,
        pod: e.pod ? `${e.pod.namespace}/${e.pod.name}` : undefined,
        health_flags: healthFlags(e, picker.outlier.isEjected(name, address)),
        rq_active: picker.load(e),
        rq_total: counts.rqTotal,
        rq_error: counts.rqError,
        cx_total: counts.cxTotal,
      };
    });
    out.set(name, { name, service: `${b.service.namespace}/${b.service.name}`, hosts: views });
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function clustersPage(
  snapshot: Snapshot | undefined,
  picker: EndpointPicker,
  hosts: HostStats,
): { text: string; json: unknown } {
  const views = clusterViews(snapshot, picker, hosts);
  const lines: string[] = [];
  for (const c of views) {
    for (const h of c.hosts) {
      const p = `${c.name}::${h.address}::`;
      lines.push(
        `${p}cx_total::${h.cx_total}`,
        `${p}rq_active::${h.rq_active}`,
        `${p}rq_error::${h.rq_error}`,
        `${p}rq_total::${h.rq_total}`,
        `${p}health_flags::${h.health_flags}`,
        `${p}hostname::${h.pod ?? ''}`,
      );
    }
  }
  return { text: `${lines.join('\n')}\n`, json: { cluster_statuses: views } };
}
