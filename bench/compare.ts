/**
 * The check `--compare` makes before another build's CPU is set beside this one's: it must reach
 * the same verdict on every workload. Byte-identical answers are not required, because an older
 * build may word a warning differently, lack a rule's warning or inject an older hook; which answers differ in bytes is
 * returned, so the table's notes can say so.
 */
import { readFileSync } from 'node:fs';
import { type BenchEnvironment, post, type ServerProcess } from './servers.js';
import type { CpuWorkload, Workload } from './workloads.js';

/** What a verdict is: status, admitted or not, patched or not. Warnings' wording may differ by build. */
interface Verdict {
  status: number;
  allowed?: boolean;
  patched: boolean;
}

function verdict(statusCode: number, body: string): Verdict {
  if (statusCode !== 200) return { status: statusCode, patched: false };
  const response = (JSON.parse(body) as { response?: { allowed?: boolean; patch?: string } }).response;
  return { status: statusCode, allowed: response?.allowed, patched: response?.patch !== undefined };
}

/** Throws when `compare` reaches another verdict than the recorded answers; returns what differs in bytes. */
export async function checkCompared(
  env: BenchEnvironment,
  compare: ServerProcess,
  list: Workload[],
  cpu: CpuWorkload[],
): Promise<string[]> {
  const answers = JSON.parse(readFileSync(env.answersFile, 'utf8')) as Record<string, string>;
  const uid = (body: string) => (JSON.parse(body) as { request: { uid: string } }).request.uid;
  const cases = [
    ...list.flatMap((w) =>
      (['/mutate', '/validate'] as const).map((path) => ({
        label: `${path} ${w.label}`,
        path,
        body: w.body,
      })),
    ),
    ...cpu.map((w) => ({ label: w.label, path: w.path, body: w.body, malformed: w.status === 400 })),
  ];
  const differing: string[] = [];
  for (const c of cases) {
    const key = 'malformed' in c && c.malformed ? `${c.path} malformed` : `${c.path} ${uid(c.body)}`;
    const recorded = answers[key];
    if (recorded === undefined) throw new Error(`no recorded answer for ${c.label}`);
    const answer = await post(compare.origin, c.path, c.body, env.ca);
    const expected = verdict(key.endsWith(' malformed') ? 400 : 200, recorded);
    const got = verdict(answer.statusCode, answer.body);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      throw new Error(
        `the compared build answered ${c.label} with ${JSON.stringify(got)}, this build with ${JSON.stringify(expected)}`,
      );
    }
    const label = c.label.replace(/\s+/g, ' ');
    if (answer.body !== recorded && !differing.includes(label)) differing.push(label);
  }
  return differing;
}
