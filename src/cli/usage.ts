// The usage texts of every command, kept apart from the commands so `--help` and usage errors load
// none of a command's dependencies (the CLI imports a command only when it runs it).

export const RUN_USAGE = `Usage: node-waypoint run --config PATH --gateway NAMESPACE/NAME [--cert FILE --key FILE --ca FILE] [flags]
       node-waypoint run --controller HOST:PORT --gateway NAMESPACE/NAME [--cert FILE --key FILE --ca FILE] [flags]
       node-waypoint proxy waypoint [Istio's template args, ignored but --domain, --proxyLogLevel and --concurrency]

  --config PATH              Kubernetes YAML/JSON manifests, file or directory (repeatable; watched)  [WAYPOINT_CONFIG, comma-separated]
  --controller HOST:PORT     Take the configuration from node-waypoint's controller instead of --config:
                             mutual TLS with --cert/--key/--ca; the last one stays while it is away  [WAYPOINT_CONTROLLER]
  --controller-identity ID   The SPIFFE ID the controller must present (default
                             spiffe://TRUST_DOMAIN/ns/istio-system/sa/node-waypoint-controller)     [WAYPOINT_CONTROLLER_IDENTITY]
  --gateway NS/NAME          The waypoint Gateway this process is                                    [WAYPOINT_GATEWAY]
  --cert FILE                Certificate chain (PEM, leaf first), reloaded on change                   [WAYPOINT_CERT]
  --key FILE                 Private key (PEM)                                                         [WAYPOINT_KEY]
  --ca FILE                  Trust bundle (PEM)                                                        [WAYPOINT_CA]
                             Without --cert/--key/--ca, the certificate comes from istiod's CA:
  --ca-addr HOST:PORT        The CA (default istiod.istio-system.svc:15012)                            [CA_ADDR]
  --ca-root FILE             Root that signs the CA's TLS (default /var/run/secrets/istio/root-cert.pem; watched)
  --ca-token FILE            Bearer token, re-read per call (default /var/run/secrets/tokens/istio-token)
  --trust-domain TD          (default cluster.local)                                                   [TRUST_DOMAIN]
  --service-account SA       Identity spiffe://TD/ns/$POD_NAMESPACE/sa/SA                              [SERVICE_ACCOUNT]
  --hbone ADDR:PORT          HBONE listener (default 0.0.0.0:15008)                                    [WAYPOINT_HBONE]
  --admin ADDR:PORT          Admin pages, Envoy style: /config_dump, /clusters, /stats, /server_info,
                             /logging, /certs, /ready, POST /debug/explain (default 127.0.0.1:15000)  [WAYPOINT_ADMIN]
  --ready ADDR:PORT          /healthz/ready only, for the kubelet (default 0.0.0.0:15021)              [WAYPOINT_READY]
  --metrics ADDR:PORT        Prometheus /stats/prometheus (default 0.0.0.0:15020)                      [WAYPOINT_METRICS]
  --cluster-id ID            The cluster: source/destination_cluster labels and the CA's clusterid
                             (default Kubernetes)                                                      [WAYPOINT_CLUSTER_ID, ISTIO_META_CLUSTER_ID]
  --endpoint-hbone-port N    Where endpoints terminate HBONE (default 15008)                           [WAYPOINT_ENDPOINT_HBONE_PORT]
  --cluster-domain DOMAIN    Kubernetes cluster domain (default cluster.local)                         [WAYPOINT_CLUSTER_DOMAIN]
  --access-log MODE          errors (default: errors and local replies), all, off                      [WAYPOINT_ACCESS_LOG]
  --access-log-encoding E    text (Istio's default format) or json; default: the mesh config's
                             accessLogEncoding, else text                                             [WAYPOINT_ACCESS_LOG_ENCODING]
  --log-level LEVEL          debug, info (default), warn, error                                        [WAYPOINT_LOG_LEVEL]
  --drain-deadline SECONDS   Time in-flight requests and TCP tunnels get after SIGTERM (default 20)    [WAYPOINT_DRAIN_DEADLINE]
  --concurrency N            Worker processes sharing the ports (default: the container's CPU quota,   [WAYPOINT_CONCURRENCY]
                             rounded up, at most the CPUs; 1: one process, no primary)
  --default-retry istio|safe  A route without a retry field: Istio's mesh default (istio: also gRPC
                             UNAVAILABLE/CANCELLED responses) or only requests that never reached the
                             app (safe: connect failure, refused stream)                             [WAYPOINT_DEFAULT_RETRY]
  --stream-idle-timeout SECONDS  A stream with no byte either way for this long ends: 408 before the
                             response, a reset after (WebSocket included; default 300, 0 = none)     [WAYPOINT_STREAM_IDLE_TIMEOUT]
  --request-head-timeout SECONDS  An inner HTTP/1.x request head must be complete this long after its
                             first byte: else 408 and the connection closes (default 10, 0 = none)  [WAYPOINT_REQUEST_HEAD_TIMEOUT]
  --max-pending-heads N      Tunnels one client identity may hold before their first request head is
                             complete; past it 503 overloaded (default 64, 0 = no bound)            [WAYPOINT_MAX_PENDING_HEADS]
  --mesh-config FILE         Istio MeshConfig YAML (or the istio ConfigMap): ext_authz and opentelemetry extensionProviders
                             for CUSTOM AuthorizationPolicy (watched: reloaded on change)              [WAYPOINT_MESH_CONFIG]
  --redis-url URL            Redis for Global BackendTrafficPolicy rate limits, redis://HOST:PORT[/DB]  [WAYPOINT_REDIS_URL]
  --redis-failure-mode MODE  When Redis cannot answer: open (default: allow, warn, count) or closed
                             (refuse with 500, flag RLSE)                                             [WAYPOINT_REDIS_FAILURE_MODE]
  --max-connections N        Concurrent HBONE connections; more are closed at accept (default 10000)   [WAYPOINT_MAX_CONNECTIONS]
  --max-tunnels-per-connection N  CONNECT streams per HBONE connection (SETTINGS_MAX_CONCURRENT_STREAMS,
                             default 1000)                                                             [WAYPOINT_MAX_TUNNELS_PER_CONNECTION]
  --max-tunnels N            CONNECT tunnels in total; more get 503 overload_tunnels (default 50000)   [WAYPOINT_MAX_TUNNELS]
  --max-pending-requests N   Requests waiting on upstream headers; more get 503 (default 10000)        [WAYPOINT_MAX_PENDING_REQUESTS]
  --max-request-headers-kb N Request head limit, 431 over it (default 60, Envoy's)                    [WAYPOINT_MAX_REQUEST_HEADERS_KB]
  --max-replay-buffer-kb N   Request body kept per request for retries (default 64)                    [WAYPOINT_MAX_REPLAY_BUFFER_KB]
  --heap-high-water F        Heap use (fraction of the limit) from which new tunnels and requests get
                             503 overload_heap (default 0.9)                                           [WAYPOINT_HEAP_HIGH_WATER]
  --heap-low-water F         Heap use below which shedding stops (default 0.8)                         [WAYPOINT_HEAP_LOW_WATER]
  --heap-max-mb N            The heap limit the marks are of (default 0: V8's heap_size_limit)         [WAYPOINT_HEAP_MAX_MB]
`;

export const DEMO_USAGE = `Usage: node-waypoint demo [--config PATH] [--gateway NS/NAME] [--waypoint-ip IP] [--client-ip IP]
                          [--client-identity SPIFFE_ID] [--access-log MODE] [--log-level LEVEL]

Defaults: the Bank of Anthos manifests in config/demo, gateway bank-of-anthos/waypoint, the waypoint
on 127.10.0.2, the sleep pod's stand-ins on 127.10.0.1 (ports 18000 and up, one per Service port).
`;

export const DEV_CA_USAGE = `Usage: node-waypoint dev-ca --out DIR --identity spiffe://TD/ns/NS/sa/SA [--identity ...] [--days N]

Writes DIR/root-cert.pem (the trust bundle), DIR/root-key.pem, and for each identity
DIR/NS.SA.cert.pem and DIR/NS.SA.key.pem (EC P-256, URI SAN, client and server use).
`;

export const TUNNEL_USAGE = `Usage:
  node-waypoint tunnel outbound --listen ADDR:PORT --waypoint ADDR:PORT --waypoint-identity SPIFFE_ID
                                --to IP:PORT --cert FILE --key FILE --ca FILE
      Accepts plain TCP on --listen and carries each connection over HBONE to the waypoint, as the
      certificate's identity, with :authority --to (a Service VIP:port or a pod IP:port).

  node-waypoint tunnel inbound --listen ENDPOINT_IP:15008 [--forward ADDR:PORT] --cert FILE --key FILE --ca FILE
      Terminates HBONE as the certificate's identity and forwards each tunnel to --forward
      (default: the tunnel's :authority, i.e. the application on ENDPOINT_IP:PORT).

  Both take --log-level (debug shows every tunnel with the peer identity).
`;

export const EXPLAIN_USAGE = `Usage: node-waypoint explain --config PATH [--config ...] --gateway NS/NAME --from SPIFFE_ID
                             --to DESTINATION [--method M] [--path P] [-H NAME:VALUE]... [--source-ip IP] [--json]

What the waypoint would decide for one request, on the configuration \`run\` would load, through the
same filter chain (path normalization, JWT, authorization). Prints the AuthorizationPolicies that
attach to the destination, their evaluation order (CUSTOM, DENY, ALLOW; AUDIT and dry-run flagged),
which rule matched or that none did, and the verdict.

  --config PATH          Kubernetes YAML/JSON manifests, file or directory (repeatable)     [WAYPOINT_CONFIG]
  --gateway NS/NAME      The waypoint Gateway                                               [WAYPOINT_GATEWAY]
  --from SPIFFE_ID       The caller, spiffe://TD/ns/NS/sa/SA (its trust domain is the mesh's)
  --to DESTINATION       NAME.NAMESPACE:PORT, a Service FQDN with port, VIP:PORT or POD_IP:PORT
  --method M             Default GET
  --path P               Path and query, default /
  -H, --header K:V       A request header (repeatable); host sets the authority (default: --to);
                         no token is sent unless an authorization header is given
  --source-ip IP         The client address the tunnel reports (default 127.0.0.1)
  --cluster-domain D     Default cluster.local
  --json                 The result as JSON

Exit status: 0 allowed, 3 denied, 1 configuration or destination unusable, 2 usage error.
`;

export const VALIDATE_USAGE = `Usage: node-waypoint validate --config PATH [--config ...] [--gateway NS/NAME] [--trust-domain TD]

Loads the configuration as \`run\` would and prints every problem: rejected resources with the
field at fault (errors), and warnings: policies not enforced at the waypoint (selector, no target),
invalid rule values and unknown \`when\` keys, targets that attach to nothing, and HTTP-only policy
fields (methods, paths, hosts, requestPrincipals, request.*) on tcp/tls Service ports. Without
--gateway, the one Gateway of class istio-waypoint in the manifests is used.

  --config PATH          Kubernetes YAML/JSON manifests, file or directory (repeatable)     [WAYPOINT_CONFIG]
  --gateway NS/NAME      The waypoint Gateway                                               [WAYPOINT_GATEWAY]
  --trust-domain TD      The mesh's trust domain (default cluster.local)
  --cluster-domain D     Default cluster.local

Exit status: 0 no errors (warnings allowed), 1 some resource rejected, 2 usage error.
`;

export const CONTROLLER_USAGE = `Usage: node-waypoint controller [--cert FILE --key FILE --ca FILE] [flags]

Watches the Kubernetes API (read-only, cluster-wide) and streams each waypoint Gateway its slice of
the configuration over gRPC with mutual TLS. Run two or more replicas: there is no leader election.

Flags (each also read from the environment variable shown):
  --kubeconfig FILE          Kubeconfig (https with CA, token or client certificate; or plain http://).
                             Default: KUBECONFIG, else the in-cluster service account, else ~/.kube/config
                                                                                                       [KUBECONFIG]
  --listen ADDR:PORT         Config stream (gRPC, mTLS) (default 0.0.0.0:15012)                        [WAYPOINT_LISTEN]
  --health ADDR:PORT         /healthz/ready (200 once every kind has listed) and /metrics
                             (default 0.0.0.0:15014)                                                    [WAYPOINT_HEALTH]
  --cert FILE                Certificate chain (PEM, leaf first), reloaded on change                   [WAYPOINT_CERT]
  --key FILE                 Private key (PEM)                                                         [WAYPOINT_KEY]
  --ca FILE                  Trust bundle (PEM) that verifies the waypoints                            [WAYPOINT_CA]
                             Without --cert/--key/--ca, the certificate comes from istiod's CA, with
                             run's flags: --ca-addr, --ca-root, --ca-token, --trust-domain,
                             --cluster-id, --service-account (POD_NAMESPACE from the environment)
  --root-namespace NS        Istio's root namespace: mesh config, GatewayClass policies (default istio-system)
                                                                                                       [WAYPOINT_ROOT_NAMESPACE]
  --cluster-domain DOMAIN    Kubernetes cluster domain (default cluster.local)                         [WAYPOINT_CLUSTER_DOMAIN]
  --log-level LEVEL          debug, info (default), warn, error                                        [WAYPOINT_LOG_LEVEL]
`;
