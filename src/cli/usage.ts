// The usage texts of every command, kept apart from the commands so `--help` and usage errors load
// none of a command's dependencies (the CLI imports a command only when it runs it).

export const RUN_USAGE = `Usage: node-waypoint run --config PATH --gateway NAMESPACE/NAME --cert FILE --key FILE --ca FILE [flags]

  --config PATH              Kubernetes YAML/JSON manifests, file or directory (repeatable; watched)  [WAYPOINT_CONFIG, comma-separated]
  --gateway NS/NAME          The waypoint Gateway this process is                                    [WAYPOINT_GATEWAY]
  --cert FILE                Certificate chain (PEM, leaf first), reloaded on change                   [WAYPOINT_CERT]
  --key FILE                 Private key (PEM)                                                         [WAYPOINT_KEY]
  --ca FILE                  Trust bundle (PEM)                                                        [WAYPOINT_CA]
  --hbone ADDR:PORT          HBONE listener (default 0.0.0.0:15008)                                    [WAYPOINT_HBONE]
  --admin ADDR:PORT          Readiness and /config_dump (default 0.0.0.0:15021)                        [WAYPOINT_ADMIN]
  --metrics ADDR:PORT        Prometheus /stats/prometheus (default 0.0.0.0:15020)                      [WAYPOINT_METRICS]
  --endpoint-hbone-port N    Where endpoints terminate HBONE (default 15008)                           [WAYPOINT_ENDPOINT_HBONE_PORT]
  --cluster-domain DOMAIN    Kubernetes cluster domain (default cluster.local)                         [WAYPOINT_CLUSTER_DOMAIN]
  --access-log MODE          errors (default: errors and local replies), all, off                      [WAYPOINT_ACCESS_LOG]
  --log-level LEVEL          debug, info (default), warn, error                                        [WAYPOINT_LOG_LEVEL]
  --drain-deadline SECONDS   Time in-flight requests and TCP tunnels get after SIGTERM (default 20)    [WAYPOINT_DRAIN_DEADLINE]
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
