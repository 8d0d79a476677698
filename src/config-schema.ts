/**
 * The configuration's JSON schema: every environment variable sts-guard reads, with its type and
 * default. Compiled ahead of time (scripts/compile-schemas.ts) into src/generated/config-validator.ts.
 */
export const configSchema = {
  type: 'object',
  // Every other environment variable is dropped from the result, not refused.
  additionalProperties: false,
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8443 },
    HOST: { type: 'string', default: '0.0.0.0' },
    TLS_CERT_FILE: { type: 'string', default: '' },
    TLS_KEY_FILE: { type: 'string', default: '' },
    TLS_CLIENT_CA_FILE: { type: 'string', default: '' },
    DEV_CERT_DIR: { type: 'string', default: 'certs/dev' },
    LOG_LEVEL: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
    },
    BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, default: 7 * 1024 * 1024 },
    SHUTDOWN_TIMEOUT_MS: { type: 'integer', minimum: 100, default: 25000 },
    SHUTDOWN_DRAIN_MS: { type: 'integer', minimum: 0, default: 2000 },
    CLUSTER_DOMAIN: { type: 'string', pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$', default: 'cluster.local' },
    RULE_REPLICA_SET: { type: 'string', enum: ['enforce', 'warn', 'off'], default: 'enforce' },
    RULE_HEADLESS_SERVICE: { type: 'string', enum: ['enforce', 'warn', 'off'], default: 'enforce' },
    RULE_SERVICE_PROTECTION: { type: 'string', enum: ['enforce', 'warn', 'off'], default: 'enforce' },
    RULE_CLIENT_ROUTING: { type: 'string', enum: ['enforce', 'warn', 'off'], default: 'warn' },
    INITIATION_WINDOW_MINUTES: { type: 'integer', minimum: 1, maximum: 1440, default: 30 },
    LOOKUP_FAILURE_MODE: { type: 'string', enum: ['deny', 'warn'], default: 'deny' },
    LOOKUP_TIMEOUT_MS: { type: 'integer', minimum: 50, maximum: 10000, default: 1500 },
    SERVICE_CACHE: { type: 'string', enum: ['on', 'off'], default: 'on' },
    STORAGE_SIZE: {
      type: 'string',
      pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$',
      default: '1Gi',
    },
    STORAGE_CLASS: { type: 'string', default: '' },
    OTHER_CONTROLLER_OWNERS: { type: 'string', enum: ['review', 'skip'], default: 'review' },
    EXCEPTIONS_FILE: { type: 'string', default: '' },
    // The background audit (src/audit/, `dist/bundle/audit.mjs`); the webhook ignores these.
    AUDIT_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    AUDIT_INTERVAL_SECONDS: { type: 'integer', minimum: 10, default: 3600 },
    AUDIT_DEBOUNCE_MS: { type: 'integer', minimum: 0, maximum: 60000, default: 1000 },
    AUDIT_DISCOVERY_INTERVAL_SECONDS: { type: 'integer', minimum: 1, default: 300 },
    AUDIT_PASS_RESULTS: { type: 'string', enum: ['on', 'off'], default: 'off' },
    AUDIT_MAX_REPORTS: { type: 'integer', minimum: 0, default: 10000 },
    AUDIT_MAX_RESULTS_PER_REPORT: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
    AUDIT_LEASE_NAME: {
      type: 'string',
      pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
      default: 'sts-guard-audit',
    },
    AUDIT_LEASE_NAMESPACE: { type: 'string', default: '' },
    AUDIT_LEASE_DURATION_SECONDS: { type: 'integer', minimum: 2, maximum: 600, default: 15 },
    AUDIT_LEASE_RENEW_DEADLINE_SECONDS: { type: 'integer', minimum: 1, maximum: 599, default: 10 },
    AUDIT_LEASE_RETRY_SECONDS: { type: 'integer', minimum: 1, maximum: 300, default: 2 },
    // Set from the downward API in deploy/audit: the Lease holder's identity and the Lease's namespace.
    POD_NAME: { type: 'string', default: '' },
    POD_NAMESPACE: { type: 'string', default: '' },
  },
} as const;
