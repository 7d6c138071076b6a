// /config_dump: the snapshot in force as JSON (Maps become objects), so an operator sees exactly
// which Services and pods this waypoint serves, with which endpoints, and what was rejected (the
// caller passes the latest load's rejections in `extra`, since they are not part of the snapshot).
import type { Snapshot } from '../../config/model.ts';

export function configDump(snapshot: Snapshot | undefined, extra: Record<string, unknown>): string {
  if (!snapshot) return `${JSON.stringify({ ...extra, snapshot: null }, null, 2)}\n`;
  return `${JSON.stringify(
    {
      ...extra,
      version: snapshot.version,
      createdAt: snapshot.createdAt,
      trustDomain: snapshot.trustDomain,
      gateway: snapshot.gateway,
      services: Object.fromEntries(snapshot.services),
      workloads: Object.fromEntries(snapshot.workloads),
      resourceCounts: snapshot.resourceCounts,
      messages: snapshot.messages,
      filters: snapshot.filters,
    },
    null,
    2,
  )}\n`;
}
