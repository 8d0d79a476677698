import { type Agent, request } from 'node:https';

export interface HttpsAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): unknown;
}

/** A real HTTPS request that trusts only `ca`, as kube-apiserver trusts only the caBundle. */
export function httpsRequest(
  url: string,
  options: {
    method?: string;
    body?: string | Buffer;
    ca: string;
    headers?: Record<string, string>;
    agent?: Agent;
  },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'POST',
        ca: options.ca,
        ...(options.agent ? { agent: options.agent } : {}),
        headers: { 'content-type': 'application/json', ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * One HTTPS request to a local server on 127.0.0.1 whose certificate names `localhost`: GET, or
 * POST of a JSON `body`; a fresh connection unless `agent` is given; optionally presenting a
 * client certificate (`key`/`cert`).
 */
export function httpsCall(
  port: number,
  path: string,
  o: { ca: string | string[]; body?: string; agent?: Agent | false; key?: string; cert?: string },
): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'localhost',
        method: o.body === undefined ? 'GET' : 'POST',
        ca: o.ca,
        agent: o.agent ?? false,
        ...(o.key && o.cert ? { key: o.key, cert: o.cert } : {}),
        headers: o.body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}
