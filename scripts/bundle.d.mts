// Types of scripts/bundle.mjs, for the TypeScript that imports it (bench/).
export const repoRoot: string;
export function bundle(options: {
  entryPoints: Record<string, string>;
  outdir: string;
  minify?: boolean;
  sourcemap?: boolean;
  external?: string[];
}): Promise<string[]>;
