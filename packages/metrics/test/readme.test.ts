import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import * as lib from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('README', () => {
  test('the example runs and prints exactly its // → lines', () => {
    const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme);
    expect(block).not.toBeNull();
    const code = (block as RegExpExecArray)[1];
    const expected = code
      .split('\n')
      .filter((l) => l.startsWith('// → '))
      .map((l) => l.slice(5));
    expect(expected.length).toBeGreaterThan(5);
    // The example is plain JavaScript apart from its import, which is bound to the sources here.
    const body = code.replace(/import \{([^}]*)\} from '@qbnn\/metrics';/, 'const {$1} = lib;');
    expect(body).not.toContain('import ');
    const printed: string[] = [];
    const fakeConsole = { log: (...a: unknown[]) => printed.push(a.map(String).join(' ')) };
    new Function('lib', 'console', body)(lib, fakeConsole);
    expect(printed).toEqual(expected);
  });

  test('the package imports nothing outside itself', () => {
    const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies ?? {})).toEqual([]);
    expect(pkg.peerDependencies).toBeUndefined();
    for (const f of readdirSync(join(here, '..', 'src'))) {
      const src = readFileSync(join(here, '..', 'src', f), 'utf8');
      for (const m of src.matchAll(/from '([^']+)'/g)) expect(m[1]).toMatch(/^\.\/[a-z]+\.js$/);
    }
  });
});
