import type {
  CoreV1Api,
  Informer,
  KubeConfig,
  ObjectCache,
  ObservableMiddleware,
  V1Service,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ServiceDirectory } from '../admission/review.js';
import type { ServiceLookup } from '../policy/index.js';

export interface KubernetesServiceDirectoryOptions {
  /** The whole budget of one look-up; well under the webhook's timeoutSeconds. */
  timeoutMs: number;
  /** Keep a watch-fed cache of Services; off in serverless mode, where instances are short-lived. */
  cache: boolean;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

export interface KubernetesServiceDirectory extends ServiceDirectory {
  /** True once the cache has listed every Service and is following the watch. */
  cacheWarm(): boolean;
  close(): void;
}

const RESTART_DELAY_MS = 2000;

type Client = { api: CoreV1Api; kubeConfig: KubeConfig; lib: typeof import('@kubernetes/client-node') };

/** Why look-ups cannot work at all, or undefined when a cluster is configured. */
function missingConfiguration(kubeConfig: KubeConfig): string | undefined {
  // loadFromDefault() falls back to this placeholder when it finds no configuration anywhere.
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080')) {
    return 'no Kubernetes configuration found (not in a pod; no KUBECONFIG or ~/.kube/config)';
  }
  return undefined;
}

function describeError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return `the Kubernetes API did not answer within ${timeoutMs} ms`;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') {
    const hint = code === 401 || code === 403 ? ' (check the webhook ServiceAccount RBAC: get services)' : '';
    return `the Kubernetes API answered HTTP ${code}${hint}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith('no Kubernetes configuration')
    ? message
    : `the Kubernetes API could not be reached: ${message}`;
}

/**
 * Service look-ups through @kubernetes/client-node. A warm watch-fed cache answers hits; a miss
 * is a live GET, so a Service created a moment earlier in the same `kubectl apply` is found.
 * A cached hit is safe to trust: clusterIP is immutable, so a headless Service stays headless.
 */
export function createKubernetesServiceDirectory(
  options: KubernetesServiceDirectoryOptions,
): KubernetesServiceDirectory {
  let client: Promise<Client> | undefined;
  let informer: (Informer<V1Service> & ObjectCache<V1Service>) | undefined;
  let warm = false;
  let closed = false;
  let restartTimer: NodeJS.Timeout | undefined;

  // Loaded on first use: the client library is the largest import, and a cold serverless
  // instance should answer reviews that need no look-up without paying for it.
  const getClient = () => {
    client ??= import('@kubernetes/client-node').then((lib) => {
      const kubeConfig = options.kubeConfig ?? new lib.KubeConfig();
      if (!options.kubeConfig) kubeConfig.loadFromDefault();
      const missing = missingConfiguration(kubeConfig);
      if (missing) throw new Error(missing);
      const api = kubeConfig.makeApiClient(lib.CoreV1Api);
      if (options.cache && !closed) startInformer({ api, kubeConfig, lib });
      return { api, kubeConfig, lib };
    });
    return client;
  };

  function startInformer({ api, kubeConfig, lib }: Client) {
    informer = lib.makeInformer(kubeConfig, '/api/v1/services', () => api.listServiceForAllNamespaces());
    informer.on('connect', () => {
      warm = true;
    });
    informer.on('error', (error) => {
      warm = false;
      if (closed) return;
      options.log.warn({ err: error }, 'service watch failed; look-ups go live until it reconnects');
      restartTimer = setTimeout(() => informer?.start().catch(() => undefined), RESTART_DELAY_MS);
      restartTimer.unref();
    });
    informer.start().catch(() => undefined);
  }

  async function liveGet(namespace: string, name: string): Promise<ServiceLookup> {
    const { api, lib } = await getClient();
    const signal = AbortSignal.timeout(options.timeoutMs);
    // Aborts the HTTP request itself, so a slow API server does not pile up open sockets.
    const abortAfterBudget: ObservableMiddleware = {
      pre: (ctx) => {
        ctx.setSignal(signal);
        return new lib.Observable(Promise.resolve(ctx));
      },
      post: (ctx) => new lib.Observable(Promise.resolve(ctx)),
    };
    try {
      const service = await api.readNamespacedService(
        { name, namespace },
        { middleware: [abortAfterBudget], middlewareMergeStrategy: 'append' },
      );
      return { outcome: 'found', service };
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return { outcome: 'not-found' };
      return { outcome: 'unavailable', reason: describeError(error, options.timeoutMs) };
    }
  }

  return {
    async lookup(namespace, name) {
      try {
        const cached = warm ? informer?.get(name, namespace) : undefined;
        if (cached) return { outcome: 'found', service: cached };
        return await withBudget(liveGet(namespace, name), options.timeoutMs);
      } catch (error) {
        return { outcome: 'unavailable', reason: describeError(error, options.timeoutMs) };
      }
    },
    cacheWarm: () => warm,
    close() {
      closed = true;
      if (restartTimer) clearTimeout(restartTimer);
      informer?.stop().catch(() => undefined);
    },
  };
}

/** Resolves to an `unavailable` outcome when `work` outlives the budget (config loading included). */
function withBudget(work: Promise<ServiceLookup>, timeoutMs: number): Promise<ServiceLookup> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ServiceLookup>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          outcome: 'unavailable',
          reason: `the Kubernetes API did not answer within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
