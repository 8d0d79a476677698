import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import type { ConfigurationOptions, KubeConfig, ObservableMiddleware } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export type KubernetesLibrary = typeof import('./library.js');
export type Unavailable = { outcome: 'unavailable'; reason: string };

/** Why look-ups cannot work at all, or undefined when a cluster is configured. */
function missingConfiguration(kubeConfig: KubeConfig): string | undefined {
  // loadFromDefault() falls back to this placeholder when it finds no configuration anywhere.
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080')) {
    return 'no Kubernetes configuration found (not in a pod; no KUBECONFIG or ~/.kube/config)';
  }
  return undefined;
}

/**
 * Loads @kubernetes/client-node and the kubeconfig on first call, once. The library is the
 * largest import (most of a cold start and ~40 MB): an instance that answers no review needing a
 * look-up never pays for it. `kubeConfig` defaults to `loadFromDefault()` (in-cluster, KUBECONFIG, ~/.kube/config).
 */
export function kubernetesClientLoader(
  kubeConfig?: KubeConfig,
): () => Promise<{ lib: KubernetesLibrary; kubeConfig: KubeConfig }> {
  let loaded: Promise<{ lib: KubernetesLibrary; kubeConfig: KubeConfig }> | undefined;
  return () => {
    loaded ??= import('./library.js').then((lib) => {
      const config = kubeConfig ?? new lib.KubeConfig();
      if (!kubeConfig) config.loadFromDefault();
      const missing = missingConfiguration(config);
      if (missing) throw new Error(missing);
      return { lib, kubeConfig: config };
    });
    return loaded;
  };
}

/**
 * A reason a user can act on, for any failure of a look-up; `permission` names the RBAC verb
 * needed, `identity` whose RBAC to check.
 */
export function describeApiError(
  error: unknown,
  timeoutMs: number,
  permission: string,
  identity = 'the webhook ServiceAccount',
): string {
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return `the Kubernetes API did not answer within ${timeoutMs} ms`;
  }
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'number') {
    const hint = code === 401 || code === 403 ? ` (check ${identity} RBAC: ${permission})` : '';
    return `the Kubernetes API answered HTTP ${code}${hint}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith('no Kubernetes configuration')
    ? message
    : `the Kubernetes API could not be reached: ${message}`;
}

export const isNotFound = (error: unknown) => (error as { code?: unknown } | null | undefined)?.code === 404;

/**
 * How long an idle connection to the API server is kept open: well under kube-apiserver's own
 * 90 s idle timeout, so it is the client that closes it, and a request never races the server
 * closing the socket it is about to reuse.
 */
export const IDLE_CONNECTION_MS = 30_000;

const TLS_MATERIAL = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;
type AgentMaterial = HttpsAgentOptions;

const sameValue = (a: unknown, b: unknown) =>
  Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b;

/**
 * @kubernetes/client-node makes a new Agent for every request, so every look-up would open a new
 * TCP connection and do a TLS handshake (~1 ms of CPU each side). This keeps one keep-alive agent
 * for the process and swaps it in for the one the client made, as long as the TLS material is
 * the same; new material (a rotated client certificate) gets a new agent and the old one's
 * connections are closed. Proxy agents are left as the client made them.
 */
export function connectionReuse() {
  let shared: { agent: HttpAgent; material: AgentMaterial } | undefined;
  return function reuse(made: HttpAgent): HttpAgent {
    const kind = made.constructor;
    if (kind !== HttpAgent && kind !== HttpsAgent) return made;
    const material = (made as HttpAgent & { options: AgentMaterial }).options;
    const current = shared;
    if (
      current?.agent.constructor === kind &&
      TLS_MATERIAL.every((k) => sameValue(current.material[k], material[k]))
    ) {
      return current.agent;
    }
    current?.agent.destroy();
    const Agent = kind as typeof HttpsAgent;
    shared = { agent: new Agent({ ...material, keepAlive: true, timeout: IDLE_CONNECTION_MS }), material };
    return shared.agent;
  };
}

const reuseConnection = connectionReuse();

/**
 * Per-request options of every look-up: the HTTP request itself is aborted once the budget is
 * spent, so a slow API server does not pile up open sockets, and the connection is one kept
 * alive (connectionReuse). (The object-parameter API takes observable middleware.)
 */
export function lookupOptions(lib: KubernetesLibrary, timeoutMs: number): ConfigurationOptions {
  const signal = AbortSignal.timeout(timeoutMs);
  const middleware: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      const made = ctx.getAgent();
      if (made) ctx.setAgent(reuseConnection(made));
      return new lib.Observable(Promise.resolve(ctx));
    },
    post: (ctx) => new lib.Observable(Promise.resolve(ctx)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/**
 * Loads the client, then runs `work` within the budget. Loading is outside the budget: it is
 * local work done once per process (compiling the library, ~0.1-0.5 s on a cold instance), not
 * the API server being slow, and it must not turn a cold instance's first look-up into a failure.
 * A failure of either becomes `unavailable` with a reason.
 */
export async function withClient<C, T>(
  load: () => Promise<C>,
  work: (client: C) => Promise<T>,
  timeoutMs: number,
  permission: string,
): Promise<T | Unavailable> {
  let client: C;
  try {
    client = await load();
  } catch (error) {
    return { outcome: 'unavailable', reason: describeApiError(error, timeoutMs, permission) };
  }
  return withinBudget(() => againIfReset(() => work(client)), timeoutMs, permission);
}

/**
 * A request sent on a kept-alive connection that the API server closed an instant before fails
 * at once with ECONNRESET ("socket hang up"). Look-ups only read, so it is sent once more, on a
 * new connection, within the same budget.
 */
async function againIfReset<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if ((error as { code?: unknown } | null | undefined)?.code !== 'ECONNRESET') throw error;
    return work();
  }
}

/** Settles to `unavailable` when `work` outlives the budget; a failure of any kind becomes `unavailable` with a reason. */
export async function withinBudget<T>(
  work: () => Promise<T>,
  timeoutMs: number,
  permission: string,
): Promise<T | Unavailable> {
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
  try {
    return await Promise.race([work(), timeout]);
  } catch (error) {
    return { outcome: 'unavailable', reason: describeApiError(error, timeoutMs, permission) };
  } finally {
    clearTimeout(timer);
  }
}

export interface LiveLookupOptions {
  /** The whole budget of one look-up (LOOKUP_TIMEOUT_MS). */
  timeoutMs: number;
  log: Logger;
  /** Defaults to `loadFromDefault()`: in-cluster in a pod, else KUBECONFIG or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

export type ApiClient<A> = { api: A; lib: KubernetesLibrary };

/**
 * What every directory read live (no cache) shares: its API client, made once on first use, and
 * a runner that bounds each look-up (withClient) and logs it when it ends `unavailable`.
 */
export function liveLookups<A>(
  options: LiveLookupOptions,
  makeApi: (lib: KubernetesLibrary, kubeConfig: KubeConfig) => A,
  failure: string,
) {
  const loadClient = kubernetesClientLoader(options.kubeConfig);
  let client: Promise<ApiClient<A>> | undefined;
  const getClient = () => {
    client ??= loadClient().then(({ lib, kubeConfig }) => ({ api: makeApi(lib, kubeConfig), lib }));
    return client;
  };
  return async function bounded<T extends { outcome: string }>(
    work: (client: ApiClient<A>) => Promise<T>,
    permission: string,
    what: string,
  ): Promise<T | Unavailable> {
    const outcome = await withClient(getClient, work, options.timeoutMs, permission);
    if (outcome.outcome === 'unavailable') {
      options.log.warn({ lookup: what, reason: (outcome as Unavailable).reason }, failure);
    }
    return outcome;
  };
}
