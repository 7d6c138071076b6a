// /config_dump: the snapshot in force as JSON (Maps become objects at every depth, so the authz and
// routing sections render), so an operator sees exactly which Services and pods this waypoint
// serves, with which endpoints, where the configuration came from and what was rejected (the caller
// passes the source and the latest load's rejections in `extra`: they are not part of the snapshot).
import type { Snapshot } from '../../config/model.ts';
import { toJson } from './json-dump.ts';

export function configDump(snapshot: Snapshot | undefined, extra: Record<string, unknown>): string {
  if (!snapshot) return `${toJson({ ...extra, snapshot: null })}\n`;
  return `${toJson({
    ...extra,
    version: snapshot.version,
    createdAt: snapshot.createdAt,
    trustDomain: snapshot.trustDomain,
    gateway: snapshot.gateway,
    services: snapshot.services,
    workloads: snapshot.workloads,
    pods: snapshot.pods,
    resourceCounts: snapshot.resourceCounts,
    messages: snapshot.messages,
    filters: snapshot.filters,
  })}\n`;
}
