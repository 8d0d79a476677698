import type {
  V1ConfigMap,
  V1Container,
  V1LifecycleHandler,
  V1OwnerReference,
  V1PodSpec,
} from '@kubernetes/client-node';

/** Where a replica-set member finds its peers: everything the bootstrap hook needs except the replica count. */
export interface MemberAddressing {
  replicaSetName: string;
  serviceName: string;
  namespace: string;
  clusterDomain: string;
  port: number;
}

/** What the edge found when it read a ConfigMap that holds a server's configuration file. */
export type ConfigMapLookup =
  | { outcome: 'found'; configMap: V1ConfigMap }
  | { outcome: 'not-found' }
  | { outcome: 'unavailable'; reason: string };

/** The ConfigMaps the edge read for one review, by name (all in the review's namespace). */
export type ConfigMaps = ReadonlyMap<string, ConfigMapLookup>;

/** Everything an engine may read to tell how one server container is configured. */
export interface ServerInput {
  pod: V1PodSpec;
  container: V1Container;
  statefulSetName: string;
  namespace: string;
  /** `spec.serviceName`, or the name sts-guard suggests when it is empty. */
  serviceName: string;
  clusterDomain: string;
  configMaps: ConfigMaps;
}

/** Where the replica-set name came from; fixes and messages depend on it. */
export type ConfigurationForm = 'flags' | 'shell' | 'config-file' | 'environment';

/** Whether the server runs as a replica-set member, as far as the manifest (and its ConfigMaps) tell. */
export type ReplicaSetWiring =
  | {
      state: 'member';
      name: string;
      form: ConfigurationForm;
      /** True when the image initiates or joins the set itself, so no bootstrap hook may be added. */
      bootstrapsItself: boolean;
      /** True when the name is an expansion the shell makes at run time (`$RS_NAME`): no hook can name it. */
      nameAtRunTime?: true;
    }
  | {
      state: 'standalone';
      form: ConfigurationForm;
      /** The exact change that makes it a member of `suggestedName`, for the form it is configured in. */
      fix(suggestedName: string): string;
    }
  | {
      state: 'unknown';
      /** Why it cannot be told, e.g. "its config file is in Secret x, which sts-guard does not read". */
      reason: string;
      /** True when only a failed look-up (API unreachable) kept it from being told. */
      lookupFailed: boolean;
    };

/** How one server container is configured. */
export interface ServerSettings {
  replicaSet: ReplicaSetWiring;
  port: number;
  /** The data directory, or undefined when a config file that may move it could not be read. */
  dataPath: string | undefined;
}

/**
 * When the bootstrap hook may initiate a new replica set: until `until` (epoch seconds; 0 never).
 * sts-guard stamps it at the StatefulSet's CREATE when no volume claim of it exists, and reopens it
 * once per `resetToken` (the sts-guard.io/reset-replica-set annotation) for a deliberate reset.
 */
export interface InitiationWindow {
  until: number;
  resetToken: string;
}

/** What a hook sts-guard injected says about itself. */
export interface BootstrapHookInfo {
  /** e.g. `v3` */
  version: string;
  /** True for the version this sts-guard writes. */
  current: boolean;
  /** The window it carries (closed for versions without one). */
  window: InitiationWindow;
}

/** How an engine names things in the policy's messages; the policy composes the rest. */
export interface EngineWording {
  /** The replica-set name fixes suggest, e.g. `rs0`. */
  suggestedReplicaSetName: string;
  /** Why a server that is no replica-set member is one, by the form it is configured in: `without --replSet`. */
  standalone(form: ConfigurationForm): string;
  /** The problem when the manifest does not tell whether the server is a member. */
  unknownWiring(reason: string): string;
  /** The fix for `unknownWiring` when the manifest, not a failed look-up, is why. */
  unknownWiringFix: string;
  /**
   * What clients meet behind a Service that balances over the members, and how they should
   * connect instead. `risk` completes "a client connecting through it …"; `connect` is the fix;
   * `seedClients` says how a client that only uses the Service as a seed names the set.
   */
  clientRouting(set: { replicaSetName: string; members: readonly string[]; srvDomain: string }): {
    risk: string;
    connect: string;
    seedClients: string;
  };
}

/**
 * What sts-guard knows about one database engine. Adding an engine means adding a module
 * that implements this interface and listing it in `engines/index.ts`; the policy never
 * names an engine.
 */
export interface DatabaseEngine {
  /** Stable id used in messages and annotations, e.g. `mongodb`. */
  readonly id: string;
  /** Human name used in messages, e.g. `MongoDB`. */
  readonly displayName: string;
  /** The engine's own words in the policy's messages: its flags, config keys and connection strings. */
  readonly wording: EngineWording;
  /** True when an image reference (any registry, tag or digest) is this engine's server image. */
  matchesImage(image: string): boolean;
  /**
   * The ConfigMaps (in the StatefulSet's namespace) whose content decides `inspect`: the ones
   * holding a config file the server is started with. Empty for nearly every StatefulSet.
   */
  configMapsToRead(pod: V1PodSpec, container: V1Container): string[];
  /** How the server is configured: replica set, port, data path; from flags, scripts, files, environment. */
  inspect(input: ServerInput): ServerSettings;
  /**
   * The operator that manages StatefulSets owned by `owner` (its controller reference) itself, as
   * `Kind.group`, or undefined when `owner` is no operator of this engine.
   */
  operatorOf(owner: V1OwnerReference): string | undefined;
  /** A postStart handler that joins or initiates the replica set, safe to run on every start. */
  bootstrapHook(addressing: MemberAddressing, window?: InitiationWindow): V1LifecycleHandler;
  /** True when a postStart handler is one that `bootstrapHook` produced (any version). */
  isBootstrapHook(handler: V1LifecycleHandler): boolean;
  /** Version and window of a hook `bootstrapHook` produced; undefined for any other handler. */
  bootstrapHookInfo(handler: V1LifecycleHandler): BootstrapHookInfo | undefined;
  /** A reset annotation's value as the hook records it, to tell whether a reset was already done. */
  bootstrapResetToken(value: string): string;
}
