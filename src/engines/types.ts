import type { V1Container, V1LifecycleHandler } from '@kubernetes/client-node';

/** Where a replica-set member finds its peers: everything the bootstrap hook needs except the replica count. */
export interface MemberAddressing {
  replicaSetName: string;
  serviceName: string;
  namespace: string;
  clusterDomain: string;
  port: number;
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
  /** True when an image reference (any registry, tag or digest) is this engine's server image. */
  matchesImage(image: string): boolean;
  /** The replica-set name the container is started with, or undefined when it runs standalone. */
  replicaSetName(container: V1Container): string | undefined;
  /** The directory the server keeps its data in, honouring command-line overrides. */
  dataPath(container: V1Container): string;
  /** The TCP port the server listens on. */
  port(container: V1Container): number;
  /** The exact change a user must make to run the container as a replica set. */
  replicaSetFix(container: V1Container, suggestedName: string): string;
  /** A postStart handler that joins or initiates the replica set, safe to run on every start. */
  bootstrapHook(addressing: MemberAddressing, window?: InitiationWindow): V1LifecycleHandler;
  /** True when a postStart handler is one that `bootstrapHook` produced (any version). */
  isBootstrapHook(handler: V1LifecycleHandler): boolean;
  /** Version and window of a hook `bootstrapHook` produced; undefined for any other handler. */
  bootstrapHookInfo(handler: V1LifecycleHandler): BootstrapHookInfo | undefined;
  /** A reset annotation's value as the hook records it, to tell whether a reset was already done. */
  bootstrapResetToken(value: string): string;
}
