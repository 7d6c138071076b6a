// The kinds the store understands, by API group and kind. Later features (AuthorizationPolicy,
// HTTPRoute, ...) call registerKind from their own module; the store never changes for a new kind.
// Documents of kinds not registered here are counted as ignored, not rejected.
import type { z } from 'zod';
import { endpointSliceKind } from './endpoint-slice.ts';
import { gatewayKind } from './gateway.ts';
import { gatewayClassKind } from './gateway-class.ts';
import { namespaceKind } from './namespace.ts';
import { podKind } from './pod.ts';
import { serviceKind } from './service.ts';
import { serviceEntryKind } from './service-entry.ts';
import { telemetryKind } from './telemetry.ts';

export interface KindDefinition<T = unknown> {
  readonly kind: string;
  /** API groups the kind is served under; `''` is the core group (`apiVersion: v1`). */
  readonly groups: readonly string[];
  /** Accepted versions; a document of another version is rejected. Absent: any version. */
  readonly versions?: readonly string[];
  /** Namespaced kinds get `metadata.namespace` defaulted to `default`; others have namespace `''`. */
  readonly namespaced: boolean;
  /** Validates the whole document (metadata included); its output becomes `Resource.spec`. */
  readonly schema: z.ZodType<T>;
}

export class KindRegistry {
  readonly #byKey = new Map<string, KindDefinition>();

  /** Adds a kind; throws if the same group/kind is already registered (two owners is a bug). */
  register<T>(def: KindDefinition<T>): void {
    for (const group of def.groups) {
      const key = `${group}/${def.kind}`;
      if (this.#byKey.has(key)) throw new Error(`kind ${key} is already registered`);
    }
    for (const group of def.groups) this.#byKey.set(`${group}/${def.kind}`, def as KindDefinition);
  }

  lookup(group: string, kind: string): KindDefinition | undefined {
    return this.#byKey.get(`${group}/${kind}`);
  }
}

/** A registry holding the kinds this package ships with. */
export function builtinKinds(): KindRegistry {
  const registry = new KindRegistry();
  registry.register(namespaceKind);
  registry.register(serviceKind);
  registry.register(serviceEntryKind);
  registry.register(endpointSliceKind);
  registry.register(podKind);
  registry.register(gatewayKind);
  registry.register(gatewayClassKind);
  registry.register(telemetryKind);
  return registry;
}

/** The registry the store uses unless given another: the built-in kinds plus whatever was registered. */
export const kindRegistry = builtinKinds();

export function registerKind<T>(def: KindDefinition<T>): void {
  kindRegistry.register(def);
}
