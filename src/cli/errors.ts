/** A command line the CLI cannot run (unknown flag, missing input): exit code 2, with a hint to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** Where to read the usage, when not `sts-guard check --help`. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Input the CLI cannot read or parse (a missing file, a YAML error, a malformed object): exit code 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}
