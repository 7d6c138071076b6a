// Extra config the bench can put in front of its backend Service: many HTTPRoute rules (the cost of
// routing, --routes) and the full resilience chain (--chain). Both are arranged so every request of
// the bench is admitted and answered 200 by the backend; the bench checks that before measuring.
import { ADDR, NS, TD } from './lab.ts';

export type RouteShape = 'exact' | 'prefix';
export type ChainName = 'full-local' | 'full-redis';

/** The Gateway API CRD's maxItems for HTTPRoute spec.rules. */
export const RULES_PER_ROUTE = 16;

const BACKEND_REF = `{ name: backend, port: ${ADDR.vip.port} }`;
const PARENT_REF = `{ group: "", kind: Service, name: backend, port: ${ADDR.vip.port} }`;

/** One rule that never matches the bench's POST /echo (no header x-bench-svc is ever sent). */
function missRule(shape: RouteShape, i: number): string {
  const match =
    shape === 'exact'
      ? `        - path: { type: Exact, value: /api/v1/resource-${i} }`
      : `        - path: { type: PathPrefix, value: /svc-${i}/api }
          headers: [{ name: x-bench-svc, value: svc-${i} }]`;
  return `    - matches:
${match}
      backendRefs:
        - ${BACKEND_REF}`;
}

/** The rule every bench request takes: PathPrefix "/", the lowest precedence there is. */
const CATCH_ALL = `    - matches:
        - path: { type: PathPrefix, value: / }
      backendRefs:
        - ${BACKEND_REF}`;

/**
 * `count` HTTPRoute rules on the backend Service as the worst case for selection: count − 1 rules
 * that never match the bench's requests, and the one that does last in precedence. Split into
 * ceil(count / 16) HTTPRoutes (the CRD's maxItems for rules); the catch-all is the last rule.
 */
export function routesYaml(count: number, shape: RouteShape): string {
  const rules = [...Array.from({ length: count - 1 }, (_, i) => missRule(shape, i)), CATCH_ALL];
  const docs: string[] = [];
  for (let r = 0; r * RULES_PER_ROUTE < rules.length; r++) {
    docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench-routes-${r}
  namespace: ${NS}
spec:
  parentRefs:
    - ${PARENT_REF}
  rules:
${rules.slice(r * RULES_PER_ROUTE, (r + 1) * RULES_PER_ROUTE).join('\n')}
`);
  }
  return docs.join('---\n');
}

/**
 * The full resilience chain on the backend Service: an ALLOW AuthorizationPolicy for the bench
 * client, an HTTPRoute with a request timeout and retries, a DestinationRule with connection pool
 * limits and outlier detection, and a rate limit that never trips (Local, or Global via Redis).
 * Every limit is far above what the bench sends.
 */
export function chainYaml(chain: ChainName): string {
  const type = chain === 'full-redis' ? 'Global' : 'Local';
  const block = type === 'Global' ? 'global' : 'local';
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: bench-chain-allow
  namespace: ${NS}
spec:
  targetRefs:
    - { kind: Service, group: "", name: backend }
  action: ALLOW
  rules:
    - from:
        - source:
            principals: ["${TD}/ns/${NS}/sa/client"]
      to:
        - operation:
            methods: ["POST", "GET"]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench-chain
  namespace: ${NS}
spec:
  parentRefs:
    - ${PARENT_REF}
  rules:
    - matches:
        - path: { type: PathPrefix, value: / }
      timeouts: { request: 10s }
      retry: { attempts: 2, codes: [503] }
      backendRefs:
        - ${BACKEND_REF}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bench-chain
  namespace: ${NS}
spec:
  host: backend.${NS}.svc.${TD}
  trafficPolicy:
    connectionPool:
      http: { http2MaxRequests: 10000, http1MaxPendingRequests: 10000 }
      tcp: { maxConnections: 10000 }
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
---
apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: bench-chain
  namespace: ${NS}
spec:
  targetRefs:
    - { group: "", kind: Service, name: backend }
  rateLimit:
    type: ${type}
    ${block}:
      rules:
        - limit: { requests: 1000000, unit: Second }
`;
}
