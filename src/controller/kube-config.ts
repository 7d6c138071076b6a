// The controller's API server connection, resolved as client-go resolves it for a controller:
// --kubeconfig FILE, else KUBECONFIG, else the in-cluster service account, else ~/.kube/config.
// TLS (CA bundle, client certificate) and credentials (bearer token, token file) are the library's.
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (env.KUBECONFIG) kc.loadFromDefault();
  else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `no Kubernetes cluster configured (--kubeconfig ${file ?? 'unset'}, KUBECONFIG, in-cluster)`,
    );
  }
  return allowPlainHttp(kc);
}

/**
 * client-node refuses http:// unless skipTLSVerify is set, which means nothing without TLS; a
 * plain-http server (kubectl proxy, a test server) is allowed as the kubeconfig names it.
 */
export function allowPlainHttp(kc: KubeConfig): KubeConfig {
  const clusters = kc.clusters.map((c) =>
    c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c,
  );
  kc.loadFromOptions({
    clusters,
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return kc;
}
