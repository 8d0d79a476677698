/** The Node.js major versions sts-guard is tested on and ships: the image and the Lambda run 24. */
export const SUPPORTED_NODE = '>=22.12 (24 LTS ships in the image and the Lambda, and is what CI tests)';

/**
 * Why this Node.js is not a supported runtime, or undefined when it is. Node.js 20 reached end of
 * life on 2026-04-30: sts-guard still starts on it (the README's commands run on machines that
 * have only 20), but says so once at start-up.
 */
export function unsupportedRuntime(version: string): string | undefined {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 12)) return undefined;
  return `Node.js ${version} is not supported: sts-guard supports Node.js ${SUPPORTED_NODE}. ${
    major <= 20 ? 'Node.js 20 and older are end-of-life. ' : ''
  }Get Node.js 24 from https://nodejs.org or with scripts/install-node.sh.`;
}
