import t from 'tap';
import { loadConfig } from '../src/config.js';

t.test(
  'defaults: HTTPS on 8443, every rule enforced but client-routing (warn), fail closed, 1Gi volumes',
  async (t) => {
    const config = loadConfig({});
    t.equal(config.port, 8443);
    t.same(config.policy.rules, {
      'replica-set': 'enforce',
      'headless-service': 'enforce',
      'service-protection': 'enforce',
      'client-routing': 'warn',
    });
    t.equal(config.policy.initiationWindowSeconds, 30 * 60);
    t.equal(config.policy.lookupFailureMode, 'deny');
    t.equal(config.policy.clusterDomain, 'cluster.local');
    t.same(config.policy.storage, { size: '1Gi', storageClassName: undefined });
    t.equal(config.lookup.timeoutMs, 1500);
    t.equal(config.tls.certFile, undefined, 'no certificate configured means a development certificate');
  },
);

t.test('reads every setting from the environment', async (t) => {
  const config = loadConfig({
    PORT: '9443',
    RULE_REPLICA_SET: 'warn',
    RULE_HEADLESS_SERVICE: 'off',
    RULE_CLIENT_ROUTING: 'enforce',
    INITIATION_WINDOW_MINUTES: '120',
    LOOKUP_FAILURE_MODE: 'warn',
    LOOKUP_TIMEOUT_MS: '800',
    CLUSTER_DOMAIN: 'corp.internal',
    STORAGE_SIZE: '20Gi',
    STORAGE_CLASS: 'fast-ssd',
    SERVICE_CACHE: 'off',
    TLS_CERT_FILE: '/etc/sts-guard/tls/tls.crt',
    TLS_KEY_FILE: '/etc/sts-guard/tls/tls.key',
  });
  t.equal(config.port, 9443);
  t.equal(config.policy.rules['replica-set'], 'warn');
  t.equal(config.policy.rules['headless-service'], 'off');
  t.equal(config.policy.rules['client-routing'], 'enforce');
  t.equal(config.policy.initiationWindowSeconds, 7200);
  t.equal(config.policy.lookupFailureMode, 'warn');
  t.equal(config.lookup.timeoutMs, 800);
  t.equal(config.lookup.cache, false);
  t.equal(config.policy.clusterDomain, 'corp.internal');
  t.same(config.policy.storage, { size: '20Gi', storageClassName: 'fast-ssd' });
  t.equal(config.tls.keyFile, '/etc/sts-guard/tls/tls.key');
});

t.test('a bad value is a clear error naming the variable', async (t) => {
  t.throws(() => loadConfig({ RULE_REPLICA_SET: 'deny' }), /RULE_REPLICA_SET/);
  t.throws(() => loadConfig({ PORT: 'https' }), /PORT/);
  t.throws(() => loadConfig({ STORAGE_SIZE: 'ten gigs' }), /STORAGE_SIZE/);
  t.throws(() => loadConfig({ INITIATION_WINDOW_MINUTES: '0' }), /INITIATION_WINDOW_MINUTES/);
  t.throws(
    () => loadConfig({ TLS_CERT_FILE: '/tls.crt' }),
    /TLS_CERT_FILE and TLS_KEY_FILE must be set together/,
  );
});

t.test(
  'OTHER_CONTROLLER_OWNERS and EXCEPTIONS_FILE: review and no exceptions by default, validated',
  async (t) => {
    const defaults = loadConfig({});
    t.equal(defaults.policy.otherControllerOwners, 'review');
    t.equal(defaults.exceptionsFile, undefined);
    const set = loadConfig({
      OTHER_CONTROLLER_OWNERS: 'skip',
      EXCEPTIONS_FILE: '/etc/sts-guard/exceptions/exceptions.yaml',
    });
    t.equal(set.policy.otherControllerOwners, 'skip');
    t.equal(set.exceptionsFile, '/etc/sts-guard/exceptions/exceptions.yaml');
    t.throws(
      () => loadConfig({ OTHER_CONTROLLER_OWNERS: 'ignore' }),
      /OTHER_CONTROLLER_OWNERS must be equal to one of the allowed values/,
    );
  },
);
