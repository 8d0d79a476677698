/** Segments by image reference: a cluster runs few images, and every review asks again (below). */
const segmentsByImage = new Map<string, readonly string[]>();
const REMEMBERED_IMAGES = 1024;

/**
 * The repository path of an image reference without registry host, tag or digest,
 * split into segments: `registry.local:5000/library/mongo:7@sha256:…` → ['library', 'mongo'].
 * Remembered per reference (frozen, so shared safely): a `/validate` review asks for each
 * container's image twice, and splitting it anew was ~3 % of the review (bench/README.md).
 */
export function imageRepositorySegments(image: string): readonly string[] {
  const known = segmentsByImage.get(image);
  if (known) return known;
  // Bounded whatever the reviews carry: start over rather than grow.
  if (segmentsByImage.size >= REMEMBERED_IMAGES) segmentsByImage.clear();
  const segments = Object.freeze(splitImage(image));
  segmentsByImage.set(image, segments);
  return segments;
}

function splitImage(image: string): string[] {
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
