import type { V1Container } from '@kubernetes/client-node';
import { flagValue } from '../image.js';
import { basename, parseScript, type ShellCommand, type ShellWord, shellScriptOf } from '../shell.js';

/** Where a shell script sits in the container: `command[i]` or `args[i]`. */
export interface ScriptLocation {
  field: 'command' | 'args';
  index: number;
  text: string;
}

/** How a container starts mongod, as far as its `command` and `args` tell. */
export type MongodLaunch =
  /** mongod's flags are plain words: `command: [mongod, …]`, or `args` handed to the image's entrypoint. */
  | { form: 'flags'; argv: string[]; direct: boolean }
  /** A shell script runs mongod; `argv` is its command line with what could be resolved resolved. */
  | {
      form: 'shell';
      argv: string[];
      /** Why mongod's flags cannot all be known (an expansion the shell makes at run time), if so. */
      unresolved: string | undefined;
      script: ScriptLocation;
      /** Where a flag added right after the mongod word goes in the script. */
      insertAt: number;
      assignments: ReadonlyMap<string, string>;
    }
  /** A shell script that starts something other than mongod itself (an image's entrypoint). */
  | { form: 'shell-other'; runs: string; assignments: ReadonlyMap<string, string> }
  | { form: 'unreadable'; reason: string };

/** Marks a word whose value the shell only knows at run time. */
const RUNTIME = '\u0000';

/** mongod flags that take no value, so an expansion after one is an argument of its own. */
const SWITCHES = new Set([
  '--auth',
  '--noauth',
  '--bind_ip_all',
  '--ipv6',
  '--fork',
  '--quiet',
  '--journal',
  '--nojournal',
  '--directoryperdb',
  '--relaxPermChecks',
  '--sslAllowInvalidCertificates',
  '--tlsAllowInvalidCertificates',
  '--enableEncryption',
  '--configsvr',
  '--shardsvr',
  '--noscripting',
  '--notablescan',
  '--wiredTigerDirectoryForIndexes',
  '--redactClientLogData',
  '-v',
  '-vv',
  '-vvv',
]);

/** Programs that run the rest of their command line: `exec mongod`, `numactl --interleave=all mongod`. */
function programOf(words: readonly ShellWord[]): { index: number; implied: boolean } | undefined {
  let i = 0;
  while (i < words.length) {
    const text = words[i]?.text ?? '';
    const name = basename(text);
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(text) || text === '--') i++;
    else if (['exec', 'command', 'nohup', 'builtin', 'tini', 'dumb-init'].includes(name)) i++;
    else if (name === 'env' || name === 'numactl' || name === 'setpriv') {
      i++;
      while (i < words.length && /^(-|[A-Za-z_][A-Za-z0-9_]*=)/.test(words[i]?.text ?? '')) i++;
    } else if (name === 'gosu' || name === 'su-exec') i += 2;
    else if (name === 'docker-entrypoint.sh') {
      // The official image's entrypoint runs mongod when its first argument is a flag.
      if ((words[i + 1]?.text ?? '').startsWith('-')) return { index: i, implied: true };
      i++;
    } else return { index: i, implied: false };
  }
  return undefined;
}

const isMongod = (word: ShellWord | undefined) => word !== undefined && basename(word.text) === 'mongod';

/** The mongod command of a script: the one it `exec`s, else the last one. */
function mongodCommand(commands: readonly ShellCommand[]) {
  let found: { command: ShellCommand; index: number; implied: boolean } | undefined;
  for (const command of commands) {
    const program = programOf(command.words);
    if (!program || !(program.implied || isMongod(command.words[program.index]))) continue;
    const execs = command.words.slice(0, program.index).some((w) => w.text === 'exec');
    if (!found || execs || !found.command.words.some((w) => w.text === 'exec')) {
      found = { command, ...program };
    }
  }
  return found;
}

/** Resolves `$VAR`, `${VAR}` and `"$@"` where the script or the container's env gives a literal. */
function resolveWords(
  words: readonly ShellWord[],
  positional: readonly string[],
  lookup: (name: string) => string | undefined,
): string[] {
  const argv: string[] = [];
  for (const word of words) {
    if (!word.expands) {
      argv.push(word.text);
      continue;
    }
    if (/^\$[@*]$/.test(word.text)) {
      argv.push(...positional);
      continue;
    }
    const variable = word.text.match(/^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/)?.[1];
    const value = variable ? lookup(variable) : undefined;
    if (value === undefined) argv.push(`${RUNTIME}${word.text}`);
    else if (word.quoted) argv.push(value);
    else argv.push(...value.split(/\s+/).filter(Boolean));
  }
  return argv;
}

/** The first word that may add flags only at run time, or undefined when every flag is known. */
function firstUnresolvedFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] ?? '';
    if (!word.startsWith(RUNTIME)) continue;
    const previous = argv[i - 1] ?? '';
    const isValue = previous.startsWith('-') && !previous.includes('=') && !SWITCHES.has(previous);
    if (!isValue) return word.slice(RUNTIME.length);
  }
  return undefined;
}

/** A flag's value, unless the shell only fills it in at run time. */
export function literalFlag(argv: readonly string[], flag: string): string | undefined {
  const value = flagValue(argv, flag);
  return value?.startsWith(RUNTIME) ? undefined : value;
}

/** A flag's value as written, run-time expansions shown as in the script (`$RS_NAME`). */
export function writtenFlag(argv: readonly string[], flag: string): string | undefined {
  return flagValue(argv, flag)?.replace(RUNTIME, '');
}

export const isRuntimeValue = (value: string | undefined) => value?.startsWith(RUNTIME) ?? false;

/** How `container` starts mongod: from its command and args, reading a `sh -c` script when there is one. */
export function mongodLaunch(container: V1Container): MongodLaunch {
  const command = container.command ?? [];
  const args = container.args ?? [];
  if (command.length > 0 && basename(command[0] ?? '') === 'mongod') {
    return { form: 'flags', argv: [...command.slice(1), ...args], direct: true };
  }
  const argv = [...command, ...args];
  const shell = command.length > 0 ? shellScriptOf(argv) : undefined;
  if (!shell) return { form: 'flags', argv: args, direct: false };

  const script: ScriptLocation =
    shell.index < command.length
      ? { field: 'command', index: shell.index, text: shell.script }
      : { field: 'args', index: shell.index - command.length, text: shell.script };
  const parsed = parseScript(shell.script);
  if (!parsed.ok)
    return {
      form: 'unreadable',
      reason: `its shell script cannot be read with confidence: ${parsed.reason}`,
    };
  const found = mongodCommand(parsed.commands);
  if (!found) {
    if (/(^|[^A-Za-z0-9_-])mongod($|[^A-Za-z0-9_-])/m.test(shell.script)) {
      return {
        form: 'unreadable',
        reason:
          'its shell script mentions mongod but does not start it as a plain command sts-guard can follow',
      };
    }
    const last = parsed.commands.at(-1);
    const program = last ? programOf(last.words) : undefined;
    const runs = (program && last?.words[program.index]?.text) ?? '(nothing)';
    return { form: 'shell-other', runs, assignments: parsed.assignments };
  }

  const env = new Map(
    (container.env ?? []).filter((e) => typeof e.value === 'string').map((e) => [e.name, e.value]),
  );
  const lookup = (name: string) => {
    const assigned = parsed.assignments.get(name);
    return assigned !== undefined && !/[$`]/.test(assigned) ? assigned : env.get(name);
  };
  // The flags follow the mongod word, or the entrypoint's when it implies mongod.
  const words = found.command.words.slice(found.index + 1);
  const mongodArgv = resolveWords(words, argv.slice(shell.index + 2), lookup);
  const mongodWord = found.command.words[found.index] as ShellWord;
  return {
    form: 'shell',
    argv: mongodArgv,
    unresolved: firstUnresolvedFlag(mongodArgv),
    script,
    insertAt: mongodWord.end,
    assignments: parsed.assignments,
  };
}

/** `--bind_ip_all` unless the container already says where mongod listens. */
export const needsBindIp = (argv: readonly string[]) =>
  !argv.some((a) => a === '--bind_ip_all' || a.startsWith('--bind_ip'));

/** The fix for flags: the args with `--replSet <name>` added. */
export function flagsFix(container: V1Container, argv: readonly string[], suggestedName: string): string {
  const args = [...(container.args ?? []), '--replSet', suggestedName];
  if (needsBindIp(argv)) args.push('--bind_ip_all');
  return `set the args of container "${container.name}" to: args: ${JSON.stringify(args)}`;
}

/**
 * The fix for a shell wrapper: the script's mongod line with `--replSet <name>` added right after
 * the mongod word. Appending to `args` instead would hand the words to the script as $0 and $1.
 */
export function scriptFix(
  container: V1Container,
  launch: Extract<MongodLaunch, { form: 'shell' }>,
  suggestedName: string,
): string {
  const { script, insertAt } = launch;
  const added = ` --replSet ${suggestedName}${needsBindIp(launch.argv) ? ' --bind_ip_all' : ''}`;
  const text = `${script.text.slice(0, insertAt)}${added}${script.text.slice(insertAt)}`;
  const lineStart = text.lastIndexOf('\n', insertAt - 1) + 1;
  const lineEnd = text.indexOf('\n', insertAt);
  const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd).trim();
  const field = [...(container[script.field] ?? [])];
  field[script.index] = text;
  return [
    `the shell script in ${script.field}[${script.index}] of container "${container.name}" starts mongod without --replSet; edit its line to:`,
    `  ${line}`,
    `that is, set ${script.field}: ${JSON.stringify(field)}`,
  ].join('\n');
}
