/**
 * The repository path of an image reference without registry host, tag or digest,
 * split into segments: `registry.local:5000/library/mongo:7@sha256:…` → ['library', 'mongo'].
 */
export function imageRepositorySegments(image: string): string[] {
  const withoutDigest = image.trim().split('@')[0] ?? '';
  const segments = withoutDigest.split('/');
  const last = segments.pop() ?? '';
  // A tag is whatever follows ':' in the last segment; a ':' earlier belongs to a registry port.
  segments.push(last.split(':')[0] ?? '');
  const first = segments[0] ?? '';
  // Docker's rule: the first segment is a registry host when it has a '.' or ':' or is localhost.
  if (segments.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    segments.shift();
  }
  return segments.map((s) => s.toLowerCase()).filter((s) => s.length > 0);
}

/** The value of a command-line flag given as `--flag value` or `--flag=value`. */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === flag) {
      const next = argv[i + 1];
      return next !== undefined && !next.startsWith('--') ? next : undefined;
    }
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}
