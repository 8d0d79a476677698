import type { V1Container, V1PersistentVolumeClaim, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { ConfigMaps, DatabaseEngine } from '../engines/index.js';
import type { ExceptionList } from './exceptions.js';
import type { CheckId, RuleId, RuleMode } from './rules.js';

export type { ConfigMapLookup, ConfigMaps } from '../engines/index.js';
export {
  ADVISORY_IDS,
  type AdvisoryId,
  type CheckId,
  RULE_IDS,
  type RuleId,
  type RuleMode,
} from './rules.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface PolicySettings {
  rules: Record<RuleId, RuleMode>;
  /** What to do when the Kubernetes API cannot say whether the Service exists. */
  lookupFailureMode: 'deny' | 'warn';
  clusterDomain: string;
  storage: { size: string; storageClassName?: string | undefined };
  /** How long after a StatefulSet's CREATE (or a deliberate reset) its bootstrap may initiate the set. */
  initiationWindowSeconds: number;
  /**
   * StatefulSets whose controller is not a known operator of their engine: `review` (default)
   * holds them to the rules like any other, `skip` leaves them to their controller.
   */
  otherControllerOwners?: 'review' | 'skip';
}

/** What the edge read or holds for one review, beyond the Service look-up. */
export interface PolicyContext {
  /** The ConfigMaps `configMapsToLookUp` asked for. */
  configMaps?: ConfigMaps | undefined;
  /** The platform team's exceptions in force. */
  exceptions?: ExceptionList | undefined;
}

/** A rule that would have denied, waived for this StatefulSet by a platform exception. */
export interface Exemption {
  exception: string;
  rule: RuleId;
}

/** What the edge found when it looked up the Service named by `spec.serviceName`. */
export type ServiceLookup =
  | { outcome: 'found'; service: V1Service }
  | { outcome: 'not-found' }
  | { outcome: 'unavailable'; reason: string };

/** A StatefulSet recognised as a database: the engine and the container that runs its server. */
export interface DatabaseTarget {
  engine: DatabaseEngine;
  container: V1Container;
  containerIndex: number;
}

export interface StatefulSetReview {
  operation: Operation;
  /** The request's namespace; `metadata.namespace` may be empty on CREATE. */
  namespace: string;
  object?: V1StatefulSet | undefined;
  oldObject?: V1StatefulSet | undefined;
}

export interface Violation {
  rule: RuleId;
  /** What is wrong, in one sentence. */
  problem: string;
  /** The exact change that fixes it. */
  fix: string;
}

/**
 * One finding about one object, in the form every consumer reads: the webhook turns findings into
 * a denial or admission warnings, `sts-guard check` into rows, the audit into policy-report results.
 */
export interface Finding {
  check: CheckId;
  /**
   * `deny`: the object is refused (an enforced rule, or a look-up that failed under
   * lookupFailureMode deny); `warn`: admitted with a warning; `waived`: a platform exception
   * waived a rule that would have denied or warned.
   */
  outcome: 'deny' | 'warn' | 'waived';
  /** What is wrong, in one sentence. */
  problem: string;
  /** The exact change that fixes it, where the policy knows one. */
  fix?: string;
  /** The admission warning as kubectl shows it (`warn` and `waived` only). */
  warning?: string;
  /** The platform exception that waived it (`waived` only). */
  exception?: { name: string; reason: string };
  /** True when a failed look-up, not the object, is why: nothing was verified. */
  unverified?: true;
}

export interface Decision {
  allowed: boolean;
  /** Violations of rules in `enforce` mode that caused a denial. */
  violations: Violation[];
  /** Everything the rules and advisories found, denials included, in the order of `warnings`. */
  findings: Finding[];
  /** Short findings returned to the user as admission warnings. */
  warnings: string[];
  /** The denial message (empty when allowed). */
  message: string;
  /** Rules waived by exceptions (they would have denied or warned). */
  exemptions?: Exemption[];
  /** Why sts-guard stepped aside, etc.: the API server records them in the audit log. */
  auditAnnotations?: Record<string, string>;
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** What the edge found when it listed the PersistentVolumeClaims in the StatefulSet's namespace. */
export type PersistentVolumeClaimListLookup =
  | { outcome: 'found'; claims: V1PersistentVolumeClaim[] }
  | { outcome: 'unavailable'; reason: string };

/**
 * The inputs of a mutation besides the object, all taken by the edge: the ConfigMaps and
 * exceptions of `PolicyContext`, the claim look-up and the time.
 */
export interface MutationLookups extends PolicyContext {
  /** The claims in the namespace; needed at CREATE (`claimsToLookUp`), else undefined. */
  claims?: PersistentVolumeClaimListLookup | undefined;
  /** Now, in epoch seconds: where an initiation window starts. */
  now: number;
}

export interface Mutation {
  /** Set when the mutating webhook must deny (a look-up failed under lookupFailureMode deny). */
  denial?: string;
  patch: JsonPatchOperation[];
  warnings: string[];
  /** What this mutation injected, as recorded in the annotation. */
  injected: string[];
  auditAnnotations?: Record<string, string>;
}
