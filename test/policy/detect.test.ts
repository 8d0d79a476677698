import t from 'tap';
import { desiredReplicas, detectDatabase } from '../../src/policy/index.js';
import { statefulSet } from '../support/fixtures.js';

t.test('recognises MongoDB server images from any registry, tag or digest', async (t) => {
  const images = [
    'mongo',
    'mongo:4.4',
    'mongo:7.0.14-jammy',
    'docker.io/library/mongo@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9',
    'registry.example.com:5000/mirror/library/mongo:6.0',
    'mongodb/mongodb-community-server:7.0-ubi8',
    'quay.io/mongodb/mongodb-enterprise-server:8.0',
    'bitnami/mongodb:7.0',
    'percona/percona-server-mongodb:7.0',
    'localhost/mongo',
  ];
  for (const image of images) {
    t.equal(detectDatabase(statefulSet({ image }))?.engine.id, 'mongodb', image);
  }
});

t.test('does not take exporters, other databases or look-alike names for MongoDB', async (t) => {
  const images = [
    'percona/mongodb_exporter:0.40',
    'bitnami/mongodb-exporter:0.40',
    'postgres:16',
    'redis:7',
    'example.com/mongo-express:1.0',
    'mongooseim/mongooseim:6',
  ];
  for (const image of images) {
    t.equal(detectDatabase(statefulSet({ image })), undefined, image);
  }
});

t.test('an init container running mongo does not make a StatefulSet a database', async (t) => {
  const sts = statefulSet({
    image: 'busybox:1.36',
    initContainers: [{ name: 'seed', image: 'mongo:7.0', command: ['mongosh', '--eval', 'true'] }],
  });
  t.equal(detectDatabase(sts), undefined);
});

t.test('the database label alone does not make an unknown image MongoDB', async (t) => {
  const sts = statefulSet({ image: 'example.com/team/datastore:1.2' });
  sts.metadata = { ...sts.metadata, labels: { 'app.kubernetes.io/component': 'database' } };
  t.equal(detectDatabase(sts), undefined);
});

t.test('finds the mongo container beside sidecars, wherever it stands', async (t) => {
  const sts = statefulSet({ image: 'mongo:7.0' });
  const containers = sts.spec?.template.spec?.containers ?? [];
  containers.unshift({ name: 'metrics', image: 'percona/mongodb_exporter:0.40' });
  const target = detectDatabase(sts);
  t.equal(target?.container.name, 'mongodb');
  t.equal(target?.containerIndex, 1);
});

t.test('unset spec.replicas means one replica, as the API server defaults it', async (t) => {
  t.equal(desiredReplicas(statefulSet({ replicas: undefined })), 1);
  t.equal(desiredReplicas(statefulSet({ replicas: 0 })), 0);
  t.equal(desiredReplicas(statefulSet({ replicas: 5 })), 5);
});
