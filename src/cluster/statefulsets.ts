import type { AppsV1Api, KubeConfig, ObservableMiddleware } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { StatefulSetDirectory } from '../admission/review.js';
import type { StatefulSetListLookup, StatefulSetLookup } from '../policy/index.js';

export interface KubernetesStatefulSetDirectoryOptions {
  /** The whole budget of one look-up (LOOKUP_TIMEOUT_MS), as for Services. */
  timeoutMs: number;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

type Client = { api: AppsV1Api; lib: typeof import('@kubernetes/client-node') };
type Unavailable = { outcome: 'unavailable'; reason: string };

/** Why look-ups cannot work at all, or undefined when a cluster is configured. */
function missingConfiguration(kubeConfig: KubeConfig): string | undefined {
  // loadFromDefault() falls back to this placeholder when it finds no configuration anywhere.
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080')) {
    return 'no Kubernetes configuration found (not in a pod; no KUBECONFIG or ~/.kube/config)';
  }
  return undefined;
}

function describeError(error: unknown, timeoutMs: number, verb: 'get' | 'list'): string {
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return `the Kubernetes API did not answer within ${timeoutMs} ms`;
  }
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'number') {
    const hint =
      code === 401 || code === 403 ? ` (check the webhook ServiceAccount RBAC: ${verb} statefulsets)` : '';
    return `the Kubernetes API answered HTTP ${code}${hint}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith('no Kubernetes configuration')
    ? message
    : `the Kubernetes API could not be reached: ${message}`;
}

/** Resolves to `unavailable` when `work` outlives the budget (client loading included). */
function withBudget<T>(work: Promise<T | Unavailable>, timeoutMs: number): Promise<T | Unavailable> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Unavailable>((resolve) => {
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

/**
 * StatefulSet look-ups through @kubernetes/client-node, live every time: scale requests and
 * Service deletions are rare, and a cache would need list/watch on every StatefulSet in the
 * cluster. Each look-up has the same budget and failure reporting as the Service look-up.
 */
export function createKubernetesStatefulSetDirectory(
  options: KubernetesStatefulSetDirectoryOptions,
): StatefulSetDirectory {
  let client: Promise<Client> | undefined;

  // Loaded on first use, as for Services: most reviews never need a StatefulSet.
  const getClient = () => {
    client ??= import('@kubernetes/client-node').then((lib) => {
      const kubeConfig = options.kubeConfig ?? new lib.KubeConfig();
      if (!options.kubeConfig) kubeConfig.loadFromDefault();
      const missing = missingConfiguration(kubeConfig);
      if (missing) throw new Error(missing);
      return { api: kubeConfig.makeApiClient(lib.AppsV1Api), lib };
    });
    return client;
  };

  /** Per-call options that abort the HTTP request itself once the budget is spent. */
  const withAbort = (lib: Client['lib']) => {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const abortAfterBudget: ObservableMiddleware = {
      pre: (ctx) => {
        ctx.setSignal(signal);
        return new lib.Observable(Promise.resolve(ctx));
      },
      post: (ctx) => new lib.Observable(Promise.resolve(ctx)),
    };
    return { middleware: [abortAfterBudget], middlewareMergeStrategy: 'append' as const };
  };

  async function liveGet(namespace: string, name: string): Promise<StatefulSetLookup> {
    const { api, lib } = await getClient();
    try {
      const statefulSet = await api.readNamespacedStatefulSet({ name, namespace }, withAbort(lib));
      return { outcome: 'found', statefulSet };
    } catch (error) {
      if ((error as { code?: unknown } | null | undefined)?.code === 404) return { outcome: 'not-found' };
      return { outcome: 'unavailable', reason: describeError(error, options.timeoutMs, 'get') };
    }
  }

  async function liveList(namespace: string): Promise<StatefulSetListLookup> {
    const { api, lib } = await getClient();
    const list = await api.listNamespacedStatefulSet({ namespace }, withAbort(lib));
    return { outcome: 'found', statefulSets: list.items ?? [] };
  }

  /** Runs a look-up within the budget; every failure becomes `unavailable` with a reason, and is logged. */
  async function bounded<T>(
    work: () => Promise<T | Unavailable>,
    verb: 'get' | 'list',
    what: string,
  ): Promise<T | Unavailable> {
    let outcome: T | Unavailable;
    try {
      outcome = await withBudget(work(), options.timeoutMs);
    } catch (error) {
      outcome = { outcome: 'unavailable', reason: describeError(error, options.timeoutMs, verb) };
    }
    if ((outcome as { outcome: string }).outcome === 'unavailable') {
      options.log.warn(
        { lookup: what, reason: (outcome as Unavailable).reason },
        'StatefulSet look-up failed',
      );
    }
    return outcome;
  }

  return {
    get: (namespace, name) =>
      bounded(() => liveGet(namespace, name), 'get', `get statefulset ${namespace}/${name}`),
    list: (namespace) => bounded(() => liveList(namespace), 'list', `list statefulsets in ${namespace}`),
  };
}
