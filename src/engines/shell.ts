/**
 * Just enough of POSIX sh to read a container's `sh -c "<script>"` with confidence: words with
 * quotes and backslashes, the separators `;` `&&` `||` `|` `&` and newlines, comments,
 * redirections, and variable assignments. Anything it cannot follow is reported as a reason,
 * never guessed: the caller decides what an unreadable script means.
 */

/** Shells whose `-c` runs the next argument as a script. */
const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'ksh', 'zsh']);

/** One word of a simple command, as the shell would pass it, or marked when expansion decides it. */
export interface ShellWord {
  /** The word after quote removal; expansions are kept verbatim (`$PORT`). */
  text: string;
  /** True when the word holds `$…`, a backquote or an unquoted glob: its value is only known at run time. */
  expands: boolean;
  /** True when the whole word was inside double quotes, so an expansion stays one word. */
  quoted: boolean;
  /** Offsets of the word in the script, for fixes that edit it. */
  start: number;
  end: number;
}

export interface ShellCommand {
  words: ShellWord[];
}

export type ParsedScript =
  | { ok: true; commands: ShellCommand[]; assignments: Map<string, string> }
  | { ok: false; reason: string };

/** Reserved words that may lead a command in a compound statement; the command follows them. */
const LEADING_KEYWORDS = new Set(['then', 'else', 'elif', 'do', '{', '!', 'if', 'while', 'until', 'time']);

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Basename of a path: `/usr/bin/mongod` → `mongod`. */
export const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * Where a container's argv (`command` then `args`) hands a script to a shell: `sh -c <script>`,
 * `bash -ec <script>`, `/bin/sh -e -c <script>`. The index is into the joined argv; the words
 * after the script are its `$0`, `$1`, …
 */
export function shellScriptOf(argv: readonly string[]): { index: number; script: string } | undefined {
  if (argv.length < 2 || !SHELLS.has(basename(argv[0] ?? ''))) return undefined;
  for (let i = 1; i < argv.length; i++) {
    const option = argv[i] ?? '';
    if (!option.startsWith('-') || option === '-' || option === '--') return undefined;
    if (option.startsWith('--')) continue; // --login, --norc
    if (option.slice(1).includes('c')) {
      const script = argv[i + 1];
      return script === undefined ? undefined : { index: i + 1, script };
    }
  }
  return undefined;
}

/** Splits a script into simple commands of words; unsupported syntax becomes a reason. */
export function parseScript(script: string): ParsedScript {
  const commands: ShellCommand[] = [];
  let words: ShellWord[] = [];
  let i = 0;
  const n = script.length;
  const endCommand = () => {
    if (words.length > 0) commands.push({ words });
    words = [];
  };

  while (i < n) {
    const c = script[i] as string;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && script[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '\n' || c === ';' || c === '&' || c === '|') {
      if (c === ';' && script[i + 1] === ';') return { ok: false, reason: 'it uses a case statement' };
      endCommand();
      i += script[i + 1] === c && c !== '\n' ? 2 : 1;
      continue;
    }
    if (c === '#') {
      while (i < n && script[i] !== '\n') i++;
      continue;
    }
    if (c === '(' || c === ')') return { ok: false, reason: 'it uses a subshell or function' };
    if (c === '<' || c === '>') {
      if (script[i + 1] === '<') return { ok: false, reason: 'it uses a here-document' };
      // A redirection: the operator and its target are no argument of the command.
      i++;
      while (i < n && (script[i] === '>' || script[i] === '&' || script[i] === '|')) i++;
      const target = readWord(script, i);
      if (!target.ok) return target;
      i = target.word ? target.word.end : i;
      continue;
    }
    const read = readWord(script, i);
    if (!read.ok) return read;
    const word = read.word as ShellWord;
    // `2>&1`: a file-descriptor number glued to a redirection is part of it.
    if (/^\d+$/.test(word.text) && (script[word.end] === '>' || script[word.end] === '<')) {
      i = word.end;
      continue;
    }
    i = word.end;
    if (words.length === 0 && LEADING_KEYWORDS.has(word.text)) continue;
    if (words.length === 0 && (word.text === 'fi' || word.text === 'done' || word.text === '}')) continue;
    words.push(word);
  }
  endCommand();

  const assignments = new Map<string, string>();
  for (const command of commands) {
    let k = 0;
    if (command.words[0]?.text === 'export' || command.words[0]?.text === 'readonly') k = 1;
    for (; k < command.words.length; k++) {
      const word = command.words[k] as ShellWord;
      if (!ASSIGNMENT.test(word.text)) break;
      const at = word.text.indexOf('=');
      assignments.set(word.text.slice(0, at), word.text.slice(at + 1));
    }
  }
  return { ok: true, commands, assignments };
}

type WordRead = { ok: true; word: ShellWord | undefined } | { ok: false; reason: string };

const WORD_END = new Set([' ', '\t', '\r', '\n', ';', '&', '|', '<', '>', '(', ')']);

/** Reads one word starting at `start`, removing quotes; `$(…)` and backquotes are kept and marked. */
function readWord(script: string, start: number): WordRead {
  let i = start;
  while (script[i] === ' ' || script[i] === '\t') i++;
  const begin = i;
  let text = '';
  let expands = false;
  let unquotedParts = 0;
  let quotedParts = 0;
  while (i < script.length && !WORD_END.has(script[i] as string)) {
    const c = script[i] as string;
    if (c === "'") {
      const close = script.indexOf("'", i + 1);
      if (close < 0) return { ok: false, reason: 'a single quote is not closed' };
      text += script.slice(i + 1, close);
      quotedParts++;
      i = close + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < script.length) {
        const d = script[i] as string;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && '"\\$`\n'.includes(script[i + 1] ?? '')) {
          if (script[i + 1] !== '\n') text += script[i + 1];
          i += 2;
          continue;
        }
        if (d === '$' && script[i + 1] === '(') {
          const end = closingParen(script, i + 1);
          if (end < 0) return { ok: false, reason: 'a $( is not closed' };
          text += script.slice(i, end + 1);
          expands = true;
          i = end + 1;
          continue;
        }
        if (d === '$' || d === '`') expands = true;
        text += d;
        i++;
      }
      if (!closed) return { ok: false, reason: 'a double quote is not closed' };
      quotedParts++;
    } else if (c === '\\') {
      text += script[i + 1] ?? '';
      unquotedParts++;
      i += 2;
    } else if (c === '$' && script[i + 1] === '(') {
      const end = closingParen(script, i + 1);
      if (end < 0) return { ok: false, reason: 'a $( is not closed' };
      text += script.slice(i, end + 1);
      expands = true;
      unquotedParts++;
      i = end + 1;
    } else if (c === '`') {
      const close = script.indexOf('`', i + 1);
      if (close < 0) return { ok: false, reason: 'a backquote is not closed' };
      text += script.slice(i, close + 1);
      expands = true;
      unquotedParts++;
      i = close + 1;
    } else {
      if (c === '$' || c === '*' || c === '?' || c === '[') expands = true;
      text += c;
      unquotedParts++;
      i++;
    }
  }
  if (i === begin) return { ok: true, word: undefined };
  return {
    ok: true,
    word: { text, expands, quoted: quotedParts > 0 && unquotedParts === 0, start: begin, end: i },
  };
}

/** The index of the `)` closing the `(` at `open`, honouring nesting and quotes; -1 if none. */
function closingParen(script: string, open: number): number {
  let depth = 0;
  for (let i = open; i < script.length; i++) {
    const c = script[i];
    if (c === "'") {
      const close = script.indexOf("'", i + 1);
      if (close < 0) return -1;
      i = close;
    } else if (c === '"') {
      let j = i + 1;
      while (j < script.length && script[j] !== '"') j += script[j] === '\\' ? 2 : 1;
      if (j >= script.length) return -1;
      i = j;
    } else if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Quotes a word for a POSIX shell only when it needs quoting. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
