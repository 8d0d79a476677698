#!/usr/bin/env node
// The CLI runs the compiled policy; `npm ci` builds dist/ through the `prepare` script.
import('../dist/cli/main.js').catch((err) => {
  console.error(`sts-guard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
