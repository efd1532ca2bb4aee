// Shared by the microkernel generators: write the generated file, or with --check exit 1 when
// the committed one differs from what the script writes.
import { readFileSync, writeFileSync } from 'node:fs';

export function writeOrCheck(target, text, script) {
  if (!process.argv.includes('--check')) {
    writeFileSync(target, text);
    return;
  }
  if (readFileSync(target, 'utf8') !== text) {
    console.error(`${target} is stale: run node ${script}`);
    process.exit(1);
  }
}
