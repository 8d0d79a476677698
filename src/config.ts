import { envSchema } from 'env-schema';
import type { PolicySettings, RuleMode } from './policy/index.js';

/** Every setting sts-guard reads, with its environment variable, default and meaning. */
const schema = {
  type: 'object',
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
    LOOKUP_FAILURE_MODE: { type: 'string', enum: ['deny', 'warn'], default: 'deny' },
    LOOKUP_TIMEOUT_MS: { type: 'integer', minimum: 50, maximum: 10000, default: 1500 },
    SERVICE_CACHE: { type: 'string', enum: ['on', 'off'], default: 'on' },
    STORAGE_SIZE: {
      type: 'string',
      pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$',
      default: '1Gi',
    },
    STORAGE_CLASS: { type: 'string', default: '' },
  },
} as const;

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
  LOOKUP_FAILURE_MODE: 'deny' | 'warn';
  LOOKUP_TIMEOUT_MS: number;
  SERVICE_CACHE: 'on' | 'off';
  STORAGE_SIZE: string;
  STORAGE_CLASS: string;
}

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
}

const optional = (value: string) => (value === '' ? undefined : value);

/** Reads and validates the configuration; throws one error naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = envSchema<Env>({ schema, data: env, dotenv: false });
  if ((e.TLS_CERT_FILE === '') !== (e.TLS_KEY_FILE === '')) {
    throw new Error(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together (or neither, for a development certificate)',
    );
  }
  if (e.SHUTDOWN_DRAIN_MS >= e.SHUTDOWN_TIMEOUT_MS) {
    throw new Error('SHUTDOWN_DRAIN_MS must be less than SHUTDOWN_TIMEOUT_MS, which includes it');
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
      },
      lookupFailureMode: e.LOOKUP_FAILURE_MODE,
      clusterDomain: e.CLUSTER_DOMAIN,
      storage: { size: e.STORAGE_SIZE, storageClassName: optional(e.STORAGE_CLASS) },
    },
  };
}
