import * as generated from './generated/config-validator.js';
import type { PolicySettings, RuleMode } from './policy/index.js';
import { describeErrors, type Validator } from './validation.js';

/** The environment after validation (src/config-schema.ts): typed, defaulted, nothing else. */
interface Env {
  PORT: number;
  HOST: string;
  TLS_CERT_FILE: string;
  TLS_KEY_FILE: string;
  TLS_CLIENT_CA_FILE: string;
  DEV_CERT_DIR: string;
  LOG_LEVEL: string;
  BODY_LIMIT_BYTES: number;
  SHUTDOWN_TIMEOUT_MS: number;
  SHUTDOWN_DRAIN_MS: number;
  CLUSTER_DOMAIN: string;
  RULE_REPLICA_SET: RuleMode;
  RULE_HEADLESS_SERVICE: RuleMode;
  RULE_SERVICE_PROTECTION: RuleMode;
  RULE_CLIENT_ROUTING: RuleMode;
  INITIATION_WINDOW_MINUTES: number;
  LOOKUP_FAILURE_MODE: 'deny' | 'warn';
  LOOKUP_TIMEOUT_MS: number;
  SERVICE_CACHE: 'on' | 'off';
  STORAGE_SIZE: string;
  STORAGE_CLASS: string;
  OTHER_CONTROLLER_OWNERS: 'review' | 'skip';
  EXCEPTIONS_FILE: string;
  AUDIT_PORT: number;
  AUDIT_INTERVAL_SECONDS: number;
  AUDIT_DEBOUNCE_MS: number;
  AUDIT_DISCOVERY_INTERVAL_SECONDS: number;
  AUDIT_PASS_RESULTS: 'on' | 'off';
  AUDIT_MAX_REPORTS: number;
  AUDIT_MAX_RESULTS_PER_REPORT: number;
  AUDIT_LEASE_NAME: string;
  AUDIT_LEASE_NAMESPACE: string;
  AUDIT_LEASE_DURATION_SECONDS: number;
  AUDIT_LEASE_RENEW_DEADLINE_SECONDS: number;
  AUDIT_LEASE_RETRY_SECONDS: number;
  POD_NAME: string;
  POD_NAMESPACE: string;
}

// src/config-schema.ts, compiled ahead of time (scripts/compile-schemas.ts).
const isConfig = generated.config as unknown as Validator<Env>;

export interface Config {
  port: number;
  host: string;
  tls: { certFile?: string; keyFile?: string; clientCaFile?: string; devCertDir: string };
  logLevel: string;
  bodyLimitBytes: number;
  /** How long in-flight reviews may take to finish after SIGTERM before the process exits anyway. */
  shutdownTimeoutMs: number;
  /**
   * After SIGTERM, how long the listener keeps answering (readyz 503, Connection: close on every
   * answer) before it closes, so load balancers and kept-alive clients move to a ready replica.
   */
  shutdownDrainMs: number;
  lookup: { timeoutMs: number; cache: boolean };
  policy: PolicySettings;
  /** The platform team's exception list (the mounted ConfigMap), reloaded when it changes. */
  exceptionsFile?: string | undefined;
  /** The background audit's settings (src/audit/main.ts). */
  audit: AuditConfig;
}

export interface AuditConfig {
  /** Plain-HTTP port of /metrics, /healthz and /readyz. */
  port: number;
  intervalMs: number;
  debounceMs: number;
  discoveryIntervalMs: number;
  passResults: boolean;
  maxReports: number;
  maxResultsPerReport: number;
  lease: {
    name: string;
    namespace: string;
    /** The holder identity: the pod's name (downward API), else unset and made up at start. */
    identity: string | undefined;
    durationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
}

const optional = (value: string) => (value === '' ? undefined : value);

/** Reads and validates the configuration; throws one error naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // The validator coerces, fills in defaults and drops unknown variables in place: work on a copy.
  const e: Record<string, unknown> = { ...env };
  if (!isConfig(e)) throw new Error(`invalid configuration: ${describeErrors(isConfig.errors, 'env')}`);
  if ((e.TLS_CERT_FILE === '') !== (e.TLS_KEY_FILE === '')) {
    throw new Error(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together (or neither, for a development certificate)',
    );
  }
  if (e.SHUTDOWN_DRAIN_MS >= e.SHUTDOWN_TIMEOUT_MS) {
    throw new Error('SHUTDOWN_DRAIN_MS must be less than SHUTDOWN_TIMEOUT_MS, which includes it');
  }
  if (
    !(
      e.AUDIT_LEASE_RETRY_SECONDS < e.AUDIT_LEASE_RENEW_DEADLINE_SECONDS &&
      e.AUDIT_LEASE_RENEW_DEADLINE_SECONDS < e.AUDIT_LEASE_DURATION_SECONDS
    )
  ) {
    // As client-go requires: the holder gives up before anyone else may take over.
    throw new Error(
      'AUDIT_LEASE_RETRY_SECONDS < AUDIT_LEASE_RENEW_DEADLINE_SECONDS < AUDIT_LEASE_DURATION_SECONDS must hold',
    );
  }
  return {
    port: e.PORT,
    host: e.HOST,
    tls: {
      certFile: optional(e.TLS_CERT_FILE),
      keyFile: optional(e.TLS_KEY_FILE),
      clientCaFile: optional(e.TLS_CLIENT_CA_FILE),
      devCertDir: e.DEV_CERT_DIR,
    },
    logLevel: e.LOG_LEVEL,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    lookup: { timeoutMs: e.LOOKUP_TIMEOUT_MS, cache: e.SERVICE_CACHE === 'on' },
    policy: {
      rules: {
        'replica-set': e.RULE_REPLICA_SET,
        'headless-service': e.RULE_HEADLESS_SERVICE,
        'service-protection': e.RULE_SERVICE_PROTECTION,
        'client-routing': e.RULE_CLIENT_ROUTING,
      },
      lookupFailureMode: e.LOOKUP_FAILURE_MODE,
      clusterDomain: e.CLUSTER_DOMAIN,
      storage: { size: e.STORAGE_SIZE, storageClassName: optional(e.STORAGE_CLASS) },
      initiationWindowSeconds: e.INITIATION_WINDOW_MINUTES * 60,
      otherControllerOwners: e.OTHER_CONTROLLER_OWNERS,
    },
    exceptionsFile: optional(e.EXCEPTIONS_FILE),
    audit: {
      port: e.AUDIT_PORT,
      intervalMs: e.AUDIT_INTERVAL_SECONDS * 1000,
      debounceMs: e.AUDIT_DEBOUNCE_MS,
      discoveryIntervalMs: e.AUDIT_DISCOVERY_INTERVAL_SECONDS * 1000,
      passResults: e.AUDIT_PASS_RESULTS === 'on',
      maxReports: e.AUDIT_MAX_REPORTS,
      maxResultsPerReport: e.AUDIT_MAX_RESULTS_PER_REPORT,
      lease: {
        name: e.AUDIT_LEASE_NAME,
        namespace: e.AUDIT_LEASE_NAMESPACE || e.POD_NAMESPACE || 'sts-guard',
        identity: optional(e.POD_NAME),
        durationMs: e.AUDIT_LEASE_DURATION_SECONDS * 1000,
        renewDeadlineMs: e.AUDIT_LEASE_RENEW_DEADLINE_SECONDS * 1000,
        retryPeriodMs: e.AUDIT_LEASE_RETRY_SECONDS * 1000,
      },
    },
  };
}
