import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createKubernetesConfigMapDirectory } from '../cluster/configmaps.js';
import { createKubernetesServiceDirectory, type KubernetesServiceDirectory } from '../cluster/services.js';
import { type Config, loadConfig } from '../config.js';
import { ExceptionListError, readExceptionList } from '../exceptions/load.js';
import type { ConfigMapDirectory, ServiceDirectory } from '../pipeline/ports.js';
import type { ExceptionList } from '../policy/index.js';
import { ClusterError, runAudit } from './audit.js';
import { checkManifests } from './check.js';
import { InputError, UsageError } from './errors.js';
import { formatAuditJson, formatAuditTable, formatJson, formatTable } from './format.js';
import { readManifests } from './input.js';
import {
  clusterThenInput,
  inputConfigMapDirectory,
  inputServiceDirectory,
  inputThenCluster,
} from './services.js';

/** 0: every StatefulSet admitted; 1: at least one denied; 2: bad usage or unreadable input. */
export const EXIT_ADMITTED = 0;
export const EXIT_DENIED = 1;
export const EXIT_ERROR = 2;

/** The commands, for the top-level usage and for naming them when one is unknown. */
const COMMANDS: Record<string, string> = {
  check: 'run the admission policy offline on manifests, as the webhook would on a CREATE',
  audit: 'judge what a live cluster already runs, as the in-cluster audit does; optionally write its reports',
};

const TOP_USAGE = `Usage: sts-guard <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, what]) => `  ${name.padEnd(8)}${what}`)
  .join('\n')}

Run "sts-guard <command> --help" for a command's options.
The webhook itself is started with \`npm start\` (README.md).
`;

const USAGE = `Usage: sts-guard check [options] <file|dir|->...

Runs the sts-guard admission policy offline on Kubernetes manifests, exactly as the webhook
would on a CREATE: the mutating webhook's patch first, then the validating webhook's rules on
the mutated StatefulSet. Objects of other kinds pass through silently.

Inputs:
  file             multi-document YAML or JSON (kind: List is unpacked)
  dir              rendered with kustomize when it holds a kustomization.yaml, else every
                   *.yaml, *.yml and *.json in it and below
  -                standard input, e.g. kustomize build overlays/prod | sts-guard check -

Options:
  -o, --output <table|json>  output format (default: table)
      --show-mutation        print the JSON Patch the webhook would apply and the resulting YAML
      --cluster              look headless Services (and ConfigMaps holding mongod's config file)
                             up in the cluster of the current kubeconfig (KUBECONFIG or
                             ~/.kube/config); a Service the cluster lacks counts when the input
                             creates it, a ConfigMap in the input wins over the cluster's.
                             Default: only the Services and ConfigMaps in the input
      --exceptions <file>    the platform team's exception list, as the webhook loads it: an
                             ExceptionList document, or the sts-guard-exceptions ConfigMap
                             manifest (default: EXCEPTIONS_FILE, else none)
  -n, --namespace <name>     namespace of objects without metadata.namespace (default: default)
  -h, --help                 show this help
  -v, --version              show the version

Rules and settings come from the same environment variables as the webhook
(RULE_REPLICA_SET, RULE_HEADLESS_SERVICE, LOOKUP_FAILURE_MODE, LOOKUP_TIMEOUT_MS, CLUSTER_DOMAIN,
STORAGE_SIZE, STORAGE_CLASS, OTHER_CONTROLLER_OWNERS, EXCEPTIONS_FILE).

Exit codes: 0 all admitted (warnings allowed), 1 a StatefulSet would be denied,
2 bad usage or unreadable input.
`;

const AUDIT_USAGE = `Usage: sts-guard audit [options]

Judges every StatefulSet and Service a live cluster already stores, as the in-cluster audit does
(docs/operations.md): each StatefulSet as the validating webhook would judge a CREATE of it today,
each Service as a Service CREATE (client-routing). The cluster is the current kubeconfig's
(KUBECONFIG, else ~/.kube/config; in a pod, its ServiceAccount), read page by page.

Options:
  -n, --namespace <name>     audit one namespace (default: all namespaces)
  -A, --all-namespaces       audit every namespace (the default)
  -o, --output <table|json>  output format (default: table)
      --chunk-size <n>       objects per LIST page, as kubectl's --chunk-size (default: 500)
      --exceptions <file>    the platform team's exception list (default: EXCEPTIONS_FILE, else none)
      --write-reports        also write the policy reports the in-cluster audit writes
                             (openreports.io Report, else wgpolicyk8s.io PolicyReport), and
                             delete those of objects now compliant, in the audited namespaces
  -h, --help                 show this help

Rules and settings come from the same environment variables as the webhook; the report caps
and pass results from AUDIT_MAX_REPORTS, AUDIT_MAX_RESULTS_PER_REPORT and AUDIT_PASS_RESULTS.
The identity needs list on statefulsets and services and get on configmaps; --write-reports
also get, list, create, update and delete on the report kind.

Exit codes: 0 every object would be admitted (warnings allowed), 1 at least one would be
denied, 2 bad usage, an unreachable cluster, or reports that could not be written.
`;

const options = {
  output: { type: 'string', short: 'o', default: 'table' },
  'show-mutation': { type: 'boolean', default: false },
  cluster: { type: 'boolean', default: false },
  exceptions: { type: 'string' },
  namespace: { type: 'string', short: 'n', default: 'default' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const;

const auditOptions = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A', default: false },
  output: { type: 'string', short: 'o', default: 'table' },
  'chunk-size': { type: 'string', default: '500' },
  exceptions: { type: 'string' },
  'write-reports': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const;

interface AuditArguments {
  namespace: string | undefined;
  output: 'table' | 'json';
  pageSize: number;
  exceptions: string | undefined;
  writeReports: boolean;
}

interface CheckCommand {
  inputs: string[];
  output: 'table' | 'json';
  showMutation: boolean;
  cluster: boolean;
  exceptions: string | undefined;
  namespace: string;
}

type Command =
  | { name: 'help'; usage: string }
  | { name: 'version' }
  | ({ name: 'check' } & CheckCommand)
  | ({ name: 'audit' } & AuditArguments);

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    // Unknown flags and missing values: node's message names the flag.
    throw new UsageError((error as Error).message);
  }
}

const AUDIT_USAGE_HINT = 'Run "sts-guard audit --help" for usage.';

function parseAudit(argv: string[]): Command {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof auditOptions; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args: argv, options: auditOptions, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, AUDIT_USAGE_HINT);
  }
  const { values, positionals } = parsed;
  if (values.help) return { name: 'help', usage: AUDIT_USAGE };
  if (values.version) return { name: 'version' };
  const extra = positionals.slice(1);
  if (extra.length > 0) {
    throw new UsageError(
      `audit takes no inputs (it reads the cluster), not "${extra.join(' ')}"`,
      AUDIT_USAGE_HINT,
    );
  }
  if (values.output !== 'table' && values.output !== 'json') {
    throw new UsageError(`--output must be table or json, not "${values.output}"`, AUDIT_USAGE_HINT);
  }
  if (values.namespace !== undefined && values['all-namespaces']) {
    throw new UsageError('--namespace and --all-namespaces exclude each other', AUDIT_USAGE_HINT);
  }
  if (values.namespace === '') throw new UsageError('--namespace must not be empty', AUDIT_USAGE_HINT);
  const pageSize = Number(values['chunk-size']);
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    throw new UsageError(
      `--chunk-size must be a whole number above 0, not "${values['chunk-size']}"`,
      AUDIT_USAGE_HINT,
    );
  }
  return {
    name: 'audit',
    namespace: values.namespace,
    output: values.output,
    pageSize,
    exceptions: values.exceptions,
    writeReports: values['write-reports'],
  };
}

const commandList = () =>
  Object.keys(COMMANDS)
    .map((c) => `"${c}"`)
    .join(', ');

function parseCommand(argv: string[]): Command {
  // The command comes first, before any flag: an unknown one is an error even with --help.
  const [first] = argv;
  if (first !== undefined && !first.startsWith('-') && !Object.hasOwn(COMMANDS, first)) {
    throw new UsageError(`unknown command "${first}"; the commands are ${commandList()}`, TOP_USAGE_HINT);
  }
  if (first === 'audit') return parseAudit(argv);
  const { values, positionals } = parseFlags(argv);
  const [command, ...inputs] = positionals;
  if (values.help) {
    return {
      name: 'help',
      usage: command === undefined ? TOP_USAGE : command === 'audit' ? AUDIT_USAGE : USAGE,
    };
  }
  if (values.version) return { name: 'version' };
  if (command === undefined)
    throw new UsageError(`no command given; the commands are ${commandList()}`, TOP_USAGE_HINT);
  if (inputs.length === 0) throw new UsageError('no input given: name files, directories, or - for stdin');
  if (values.output !== 'table' && values.output !== 'json') {
    throw new UsageError(`--output must be table or json, not "${values.output}"`);
  }
  if (values.namespace === '') throw new UsageError('--namespace must not be empty');
  return {
    name: 'check',
    inputs,
    output: values.output,
    showMutation: values['show-mutation'],
    cluster: values.cluster,
    exceptions: values.exceptions,
    namespace: values.namespace,
  };
}

const TOP_USAGE_HINT = 'Run "sts-guard --help" for the commands.';
const CHECK_USAGE_HINT = 'Run "sts-guard check --help" for usage.';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function version(): Promise<string> {
  // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

function configuration(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    throw new UsageError(`invalid configuration: ${(error as Error).message}`);
  }
}

/** The exception list of --exceptions, else EXCEPTIONS_FILE, else none; a bad one is exit 2. */
async function exceptionList(file: string | undefined): Promise<ExceptionList | undefined> {
  try {
    return file ? await readExceptionList(file) : undefined;
  } catch (error) {
    if (error instanceof ExceptionListError) throw new InputError(error.message);
    throw error;
  }
}

async function audit(command: AuditArguments): Promise<number> {
  const config = configuration();
  const exceptions = await exceptionList(command.exceptions ?? config.exceptionsFile);
  const report = await runAudit({ ...command, exceptions }, config);
  process.stdout.write(command.output === 'json' ? formatAuditJson(report) : formatAuditTable(report));
  if (report.reportsError) {
    process.stderr.write(`sts-guard: ${report.reportsError}\n`);
    return EXIT_ERROR;
  }
  return report.objects.every((o) => o.allowed) ? EXIT_ADMITTED : EXIT_DENIED;
}

async function check(command: CheckCommand): Promise<number> {
  const config = configuration();
  const exceptions = await exceptionList(command.exceptions ?? config.exceptionsFile);
  const manifests = await readManifests(command.inputs, readStdin);
  const objects = manifests.map((m) => m.object);
  const fromInput = inputServiceDirectory(objects, command.namespace);
  let configMaps: ConfigMapDirectory = inputConfigMapDirectory(objects, command.namespace);

  let cluster: KubernetesServiceDirectory | undefined;
  let services: ServiceDirectory = fromInput;
  if (command.cluster) {
    // Logs go to stderr so that stdout stays the report (and valid JSON with --output json).
    const log = pino({ level: 'warn', base: { service: 'sts-guard-cli' } }, pino.destination(2));
    cluster = createKubernetesServiceDirectory({ timeoutMs: config.lookup.timeoutMs, cache: false, log });
    services = clusterThenInput(cluster, fromInput);
    configMaps = inputThenCluster(
      configMaps,
      createKubernetesConfigMapDirectory({ timeoutMs: config.lookup.timeoutMs, log }),
    );
  }

  try {
    // SOURCE_DATE_EPOCH (the reproducible-builds convention) pins when the initiation window starts.
    const epoch = Number(process.env.SOURCE_DATE_EPOCH);
    const report = await checkManifests(manifests, {
      settings: config.policy,
      defaultNamespace: command.namespace,
      services,
      configMaps,
      exceptions,
      ...(process.env.SOURCE_DATE_EPOCH && Number.isInteger(epoch) ? { now: epoch } : {}),
    });
    const format = command.output === 'json' ? formatJson : formatTable;
    process.stdout.write(format(report, { showMutation: command.showMutation }));
    return report.statefulSets.every((c) => c.allowed) ? EXIT_ADMITTED : EXIT_DENIED;
  } finally {
    cluster?.close();
  }
}

async function main(argv: string[]): Promise<number> {
  try {
    const command = parseCommand(argv);
    switch (command.name) {
      case 'help':
        process.stdout.write(command.usage);
        return EXIT_ADMITTED;
      case 'version':
        process.stdout.write(`${await version()}\n`);
        return EXIT_ADMITTED;
      case 'check':
        return await check(command);
      case 'audit':
        return await audit(command);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`sts-guard: ${error.message}\n${error.hint ?? CHECK_USAGE_HINT}\n`);
    } else if (error instanceof ClusterError) {
      process.stderr.write(`sts-guard: ${error.message}\n`);
    } else if (error instanceof InputError) {
      process.stderr.write(`sts-guard: cannot check the input:\n${error.message}\n`);
    } else {
      process.stderr.write(`sts-guard: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
    }
    return EXIT_ERROR;
  }
}

// exitCode, not exit(): stdout may be a pipe that is still draining the report.
process.exitCode = await main(process.argv.slice(2));
