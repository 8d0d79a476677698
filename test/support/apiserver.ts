// STAND-IN, not a real API server: a Node imitation of the few Service, StatefulSet, ConfigMap and
// PersistentVolumeClaim calls sts-guard makes, kept only for faults the real kube-apiserver cannot
// be made to produce on cue (hangs, delays, 403, 500). Everything else is proven against the real one in test/e2e/.
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  KubeConfig,
  type V1ConfigMap,
  type V1PersistentVolumeClaim,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';

export type Misbehaviour =
  | { kind: 'none' }
  | { kind: 'status'; code: number }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number };

/**
 * A stand-in API server: an HTTP server that answers the Kubernetes API calls sts-guard makes for
 * Services (GET one, LIST all, LIST a namespace, WATCH all), StatefulSets (GET one, LIST a
 * namespace), ConfigMaps (GET one) and PersistentVolumeClaims (LIST a namespace), so tests drive
 * the real @kubernetes/client-node client into faults on cue.
 */
export class LocalApiServer {
  readonly services = new Map<string, V1Service>();
  /** StatefulSets by `namespace/name`. */
  readonly statefulSets = new Map<string, V1StatefulSet>();
  /** ConfigMaps by `namespace/name`. */
  readonly configMaps = new Map<string, V1ConfigMap>();
  /** PersistentVolumeClaims by `namespace/name`. */
  readonly claims = new Map<string, V1PersistentVolumeClaim>();
  /** Misbehaviour for every request not matched by `misbehaveOn`. */
  misbehaviour: Misbehaviour = { kind: 'none' };
  /** Per-path misbehaviour, first match wins (see `misbehaveOn`). */
  private pathMisbehaviours: Array<{ path: RegExp; misbehaviour: Misbehaviour }> = [];
  /** Paths of the requests received, to tell cache hits from live GETs. */
  readonly requests: string[] = [];
  /** TCP connections accepted, to tell a reused connection from a new one per request. */
  connections = 0;
  private server: Server;
  private watchers = new Set<ServerResponse>();
  private resourceVersion = 1;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', () => {
      this.connections++;
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'local', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'sts-guard', token: 'test-token' }],
      contexts: [{ name: 'local', cluster: 'local', user: 'sts-guard' }],
      currentContext: 'local',
    });
    return kc;
  }

  /** Writes kubeConfig() to `path` (mode 0600), as a process is handed one through KUBECONFIG. */
  async writeKubeconfig(path: string): Promise<string> {
    await writeFile(path, this.kubeConfig().exportConfig(), { mode: 0o600 });
    return path;
  }

  /** Adds or replaces a Service and tells watchers, as the real API server would. */
  put(service: V1Service): void {
    const key = `${service.metadata?.namespace}/${service.metadata?.name}`;
    const type = this.services.has(key) ? 'MODIFIED' : 'ADDED';
    const object = {
      ...service,
      metadata: { ...service.metadata, resourceVersion: String(++this.resourceVersion) },
    };
    this.services.set(key, object);
    for (const w of this.watchers) w.write(`${JSON.stringify({ type, object })}\n`);
  }

  /** Adds or replaces a StatefulSet (no watch: sts-guard reads StatefulSets live). */
  putStatefulSet(statefulSet: V1StatefulSet): void {
    const key = `${statefulSet.metadata?.namespace}/${statefulSet.metadata?.name}`;
    this.statefulSets.set(key, {
      ...statefulSet,
      metadata: { ...statefulSet.metadata, resourceVersion: String(++this.resourceVersion) },
    });
  }

  /** Adds or replaces a ConfigMap (no watch: sts-guard reads ConfigMaps live). */
  putConfigMap(configMap: V1ConfigMap): void {
    this.configMaps.set(`${configMap.metadata?.namespace}/${configMap.metadata?.name}`, {
      ...configMap,
      metadata: { ...configMap.metadata, resourceVersion: String(++this.resourceVersion) },
    });
  }

  /** Adds or replaces a PersistentVolumeClaim (no watch: sts-guard lists them live). */
  putClaim(namespace: string, name: string): void {
    this.claims.set(`${namespace}/${name}`, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace, resourceVersion: String(++this.resourceVersion) },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
  }

  /**
   * Misbehaves only on requests whose path matches, e.g. `/statefulsets/` or `/services/`;
   * `{ kind: 'none' }` makes a path behave while `misbehaviour` applies elsewhere.
   */
  misbehaveOn(path: RegExp, misbehaviour: Misbehaviour): void {
    this.pathMisbehaviours.push({ path, misbehaviour });
  }

  /** Back to answering every request normally. */
  behave(): void {
    this.misbehaviour = { kind: 'none' };
    this.pathMisbehaviours = [];
  }

  /** Closes the connections no request is using, as a server's idle timeout or restart would. */
  dropIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.destroy();
    this.server.closeAllConnections();
    this.server.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method} ${url.pathname}${url.searchParams.get('watch') ? '?watch' : ''}`);
    const m =
      this.pathMisbehaviours.find((p) => p.path.test(url.pathname))?.misbehaviour ?? this.misbehaviour;
    if (m.kind === 'hang') return; // never answers
    if (m.kind === 'status') return this.status(res, m.code, 'injected failure');
    const answer = () => this.answer(url, res);
    if (m.kind === 'delay') setTimeout(answer, m.ms);
    else answer();
  }

  private answer(url: URL, res: ServerResponse) {
    const one = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/services\/([^/]+)$/);
    if (one) {
      const service = this.services.get(`${one[1]}/${one[2]}`);
      if (!service) return this.status(res, 404, `services "${one[2]}" not found`, 'NotFound');
      return this.json(res, 200, service);
    }
    const configMap = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/);
    if (configMap) {
      const found = this.configMaps.get(`${configMap[1]}/${configMap[2]}`);
      if (!found) return this.status(res, 404, `configmaps "${configMap[2]}" not found`, 'NotFound');
      return this.json(res, 200, found);
    }
    if (url.pathname === '/api/v1/services') {
      if (url.searchParams.get('watch')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        this.watchers.add(res);
        res.on('close', () => this.watchers.delete(res));
        return;
      }
      return this.list(res, 'v1', 'ServiceList', [...this.services.values()]);
    }
    const serviceList = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/services$/);
    if (serviceList) {
      return this.list(res, 'v1', 'ServiceList', this.inNamespace(this.services, serviceList[1]));
    }
    const statefulSet = url.pathname.match(/^\/apis\/apps\/v1\/namespaces\/([^/]+)\/statefulsets\/([^/]+)$/);
    if (statefulSet) {
      const found = this.statefulSets.get(`${statefulSet[1]}/${statefulSet[2]}`);
      if (!found) {
        return this.status(res, 404, `statefulsets.apps "${statefulSet[2]}" not found`, 'NotFound');
      }
      return this.json(res, 200, found);
    }
    const statefulSetList = url.pathname.match(/^\/apis\/apps\/v1\/namespaces\/([^/]+)\/statefulsets$/);
    if (statefulSetList) {
      return this.list(
        res,
        'apps/v1',
        'StatefulSetList',
        this.inNamespace(this.statefulSets, statefulSetList[1]),
      );
    }
    const claimList = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/persistentvolumeclaims$/);
    if (claimList) {
      return this.list(res, 'v1', 'PersistentVolumeClaimList', this.inNamespace(this.claims, claimList[1]));
    }
    return this.status(res, 404, `no route for ${url.pathname}`, 'NotFound');
  }

  private inNamespace<T extends { metadata?: { namespace?: string } }>(
    objects: Map<string, T>,
    namespace?: string,
  ) {
    return [...objects.values()].filter((o) => o.metadata?.namespace === namespace);
  }

  /** A List as the API server sends it, at the current resourceVersion. */
  private list(res: ServerResponse, apiVersion: string, kind: string, items: unknown[]) {
    this.json(res, 200, {
      apiVersion,
      kind,
      metadata: { resourceVersion: String(this.resourceVersion) },
      items,
    });
  }

  private json(res: ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, message: string, reason = 'InternalError') {
    this.json(res, code, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    });
  }
}
