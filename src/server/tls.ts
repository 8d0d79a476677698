import { watch } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

export interface ServingCertificate {
  key: string;
  cert: string;
  /** Where the certificate was read from or written to. */
  certFile: string;
  keyFile: string;
  generated: boolean;
}

/**
 * Forward-secret AEAD suites only (Mozilla "intermediate"): the TLS 1.3 suites, then ECDHE with
 * AES-GCM or ChaCha20-Poly1305 for TLS 1.2, for ECDSA and RSA keys. Node's default list would
 * also accept CBC and non-ECDHE suites on TLS 1.2. Go's TLS client (kube-apiserver) offers these.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Server TLS settings shared by the listener and every reload: TLS 1.2+, modern ciphers only. */
export const TLS_DEFAULTS = {
  minVersion: 'TLSv1.2',
  ciphers: TLS_CIPHERS,
} as const satisfies SecureContextOptions;

/** Host names a development certificate is valid for: local use and the in-cluster Service. */
const DEV_HOSTNAMES = [
  'localhost',
  'sts-guard',
  'sts-guard.sts-guard.svc',
  'sts-guard.sts-guard.svc.cluster.local',
];

/** A self-signed certificate for local runs, written to `dir` so curl can trust it (`--cacert`). */
export async function createDevelopmentCertificate(dir: string): Promise<ServingCertificate> {
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate.getTime() + 30 * 24 * 3600 * 1000);
  // Loaded here, not at import: it is only for local runs, and its X.509 stack costs ~100 ms of
  // start-up that every cold serverless instance would otherwise pay (app.ts imports this file).
  const selfsigned = await import('selfsigned');
  // Node's import() names a CommonJS module's exports; in the esbuild bundle only `default` has them.
  const { generate } = selfsigned.default ?? selfsigned;
  const pems = await generate([{ name: 'commonName', value: 'sts-guard development' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...DEV_HOSTNAMES.map((value) => ({ type: 2 as const, value })),
          { type: 7 as const, ip: '127.0.0.1' },
          { type: 7 as const, ip: '::1' },
        ],
      },
    ],
  });
  const certFile = resolve(dir, 'tls.crt');
  const keyFile = resolve(dir, 'tls.key');
  await mkdir(dir, { recursive: true });
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { key: pems.private, cert: pems.cert, certFile, keyFile, generated: true };
}

/** The configured certificate files, or a freshly generated development certificate. */
export async function loadServingCertificate(tls: Config['tls']): Promise<ServingCertificate> {
  if (tls.certFile && tls.keyFile) {
    const [cert, key] = await Promise.all([readFile(tls.certFile, 'utf8'), readFile(tls.keyFile, 'utf8')]);
    return { cert, key, certFile: tls.certFile, keyFile: tls.keyFile, generated: false };
  }
  return createDevelopmentCertificate(tls.devCertDir);
}

/**
 * Re-reads the certificate when its files change and hands the new pair to `apply`. Watches the
 * directories, not the files: Kubernetes updates Secret volumes by swapping a `..data` symlink,
 * and cert-manager renews in place. A half-written or mismatched pair is logged and skipped;
 * the server keeps serving the previous certificate.
 */
export function watchCertificate(
  files: { certFile: string; keyFile: string },
  apply: (pair: { cert: string; key: string }) => void,
  log: Logger,
  debounceMs = 200,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  const reload = async () => {
    try {
      const [cert, key] = await Promise.all([
        readFile(files.certFile, 'utf8'),
        readFile(files.keyFile, 'utf8'),
      ]);
      if (cert + key === last) return;
      apply({ cert, key });
      last = cert + key;
      log.info({ certFile: files.certFile }, 'serving certificate reloaded');
    } catch (err) {
      log.warn(
        { err, certFile: files.certFile },
        'certificate reload failed; still serving the previous one',
      );
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  };
  const dirs = [...new Set([dirname(files.certFile), dirname(files.keyFile)])];
  const watchers = dirs.map((d) => watch(d, schedule));
  void readFile(files.certFile, 'utf8')
    .then(async (cert) => {
      last = cert + (await readFile(files.keyFile, 'utf8'));
    })
    .catch(() => undefined);
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
