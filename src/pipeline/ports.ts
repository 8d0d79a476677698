import type {
  ConfigMapLookup,
  ExceptionList,
  PersistentVolumeClaimListLookup,
  PolicySettings,
  ServiceListLookup,
  ServiceLookup,
  StatefulSetListLookup,
  StatefulSetLookup,
} from '../policy/index.js';

/**
 * What the pipeline reads from outside the policy. The cluster edge (src/cluster/) implements
 * these against the Kubernetes API; `sts-guard check` against its input files (and optionally the
 * cluster); tests against fixtures.
 */

/** Answers "what is Service namespace/name?" for the validating review. */
export interface ServiceDirectory {
  lookup(namespace: string, name: string): Promise<ServiceLookup>;
  /**
   * The Services of a namespace, for the client-routing rule on a StatefulSet review. Optional:
   * without it, that check is left to the Service's own review.
   */
  list?(namespace: string): Promise<ServiceListLookup>;
}

/**
 * Reads StatefulSets for the reviews whose object is not one: a Scale (get the StatefulSet it
 * scales) and a Service (list the StatefulSets that may name it).
 */
export interface StatefulSetDirectory {
  get(namespace: string, name: string): Promise<StatefulSetLookup>;
  list(namespace: string): Promise<StatefulSetListLookup>;
}

/** Answers "what is ConfigMap namespace/name?" for a server started with a config file. */
export interface ConfigMapDirectory {
  lookup(namespace: string, name: string): Promise<ConfigMapLookup>;
}

/** The platform team's exceptions in force now (reloaded while the server runs). */
export interface ExceptionSource {
  current(): ExceptionList;
}

/**
 * Lists the PersistentVolumeClaims of a namespace for the mutation of a StatefulSet CREATE:
 * claims named `<template>-<statefulset>-<ordinal>` mean an earlier StatefulSet of that name left
 * data behind, so the new one gets no initiation window.
 */
export interface PersistentVolumeClaimDirectory {
  list(namespace: string): Promise<PersistentVolumeClaimListLookup>;
}

/** The settings and the look-ups one evaluation may use. */
export interface ReviewContext {
  settings: PolicySettings;
  services: ServiceDirectory;
  /** Without it, scale and Service reviews that need a StatefulSet fall under lookupFailureMode. */
  statefulSets?: StatefulSetDirectory | undefined;
  /** Without it, a server whose config file is in a ConfigMap falls under lookupFailureMode. */
  configMaps?: ConfigMapDirectory | undefined;
  exceptions?: ExceptionSource | undefined;
  /** Without it, a CREATE's claim look-up falls under lookupFailureMode. */
  claims?: PersistentVolumeClaimDirectory | undefined;
  /** Milliseconds since the epoch; Date.now unless a test fixes it. */
  clock?: (() => number) | undefined;
}

/** How one look-up ended, for logs and metrics. */
export type LookupOutcome = ServiceLookup['outcome'];
