import type { CoreV1Api, KubeConfig, ListWatch, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ServiceDirectory } from '../pipeline/ports.js';
import type { ServiceListLookup, ServiceLookup } from '../policy/index.js';
import {
  describeApiError,
  isNotFound,
  type KubernetesLibrary,
  kubernetesClientLoader,
  lookupOptions,
  withClient,
} from './client.js';

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
  /**
   * Loads the client and, with the cache on, starts filling it now rather than at the first
   * look-up (the webhook's Deployment calls it at start-up). A failure (e.g. no kubeconfig) is
   * logged once here; every look-up then reports it as its reason.
   */
  start(): void;
  /** True once the cache has listed every Service and is following the watch. */
  cacheWarm(): boolean;
  close(): void;
}

const RESTART_DELAY_MS = 2000;

const PERMISSION = 'get services';
const LIST_PERMISSION = 'list services';

/**
 * Service look-ups through @kubernetes/client-node. A warm watch-fed cache answers hits; a miss
 * is a live GET, so a Service created a moment earlier in the same `kubectl apply` is found.
 * A cached hit is safe to trust: clusterIP is immutable, so a headless Service stays headless.
 */
export function createKubernetesServiceDirectory(
  options: KubernetesServiceDirectoryOptions,
): KubernetesServiceDirectory {
  const loadClient = kubernetesClientLoader(options.kubeConfig);
  let client: Promise<{ core: CoreV1Api; lib: KubernetesLibrary }> | undefined;
  let informer: ListWatch<V1Service> | undefined;
  // 'connect' fires when the informer (re)connects, before its first LIST has filled the cache;
  // the cache is warm once that LIST has also given it a resourceVersion. Until then a cached
  // list of a namespace would be empty, so look-ups go live.
  let connected = false;
  const warm = () => connected && informer !== undefined && informer.latestResourceVersion() !== '';
  let closed = false;
  let restartTimer: NodeJS.Timeout | undefined;

  const getClient = () => {
    client ??= loadClient().then(({ lib, kubeConfig }) => {
      const core = kubeConfig.makeApiClient(lib.CoreV1Api);
      if (options.cache && !closed) startInformer(lib, kubeConfig, core);
      return { core, lib };
    });
    return client;
  };

  function startInformer(lib: KubernetesLibrary, kubeConfig: KubeConfig, core: CoreV1Api) {
    informer = new lib.ListWatch<V1Service>(
      '/api/v1/services',
      new lib.Watch(kubeConfig),
      () => core.listServiceForAllNamespaces(),
      false,
    );
    informer.on('connect', () => {
      connected = true;
    });
    informer.on('error', (error) => {
      connected = false;
      if (closed) return;
      options.log.warn({ err: error }, 'service watch failed; look-ups go live until it reconnects');
      restartTimer = setTimeout(() => informer?.start().catch(() => undefined), RESTART_DELAY_MS);
      restartTimer.unref();
    });
    informer.start().catch(() => undefined);
  }

  async function liveGet(
    { core, lib }: Awaited<ReturnType<typeof getClient>>,
    namespace: string,
    name: string,
  ): Promise<ServiceLookup> {
    try {
      const service = await core.readNamespacedService(
        { name, namespace },
        lookupOptions(lib, options.timeoutMs),
      );
      return { outcome: 'found', service };
    } catch (error) {
      if (isNotFound(error)) return { outcome: 'not-found' };
      throw error;
    }
  }

  async function liveList(
    { core, lib }: Awaited<ReturnType<typeof getClient>>,
    namespace: string,
  ): Promise<ServiceListLookup> {
    const list = await core.listNamespacedService({ namespace }, lookupOptions(lib, options.timeoutMs));
    return { outcome: 'found', services: list.items ?? [] };
  }

  return {
    async list(namespace) {
      // The warm cache holds every Service; a cold one (or none) asks the API server.
      if (warm() && informer) return { outcome: 'found', services: informer.list(namespace) };
      return withClient(
        getClient,
        (client) => liveList(client, namespace),
        options.timeoutMs,
        LIST_PERMISSION,
      );
    },
    async lookup(namespace, name) {
      const cached = warm() ? informer?.get(name, namespace) : undefined;
      if (cached) return { outcome: 'found', service: cached };
      return withClient(
        getClient,
        (client) => liveGet(client, namespace, name),
        options.timeoutMs,
        PERMISSION,
      );
    },
    start() {
      getClient().catch((error: unknown) =>
        options.log.warn(
          { reason: describeApiError(error, options.timeoutMs, PERMISSION) },
          'Service look-ups are unavailable; each review that needs one says so',
        ),
      );
    },
    cacheWarm: warm,
    close() {
      closed = true;
      if (restartTimer) clearTimeout(restartTimer);
      informer?.stop().catch(() => undefined);
    },
  };
}
