#!/usr/bin/env node
// Generates packages/core/src/backend/gradients.gen.ts: every gradient of tfjs-core, registered into
// the ONE tfjs-core instance the rest of the program uses.
//
// Why: tfjs-core's main (dist/tf-core.node.js) registers no gradient, and the file that does,
// dist/register_all_gradients.js, is ESM with extensionless relative imports that plain `node` cannot
// load. Bundling it naively inlines a second copy of most of tfjs-core (engine, tensor, flags, io...).
// This script bundles only the gradient files themselves; every other tfjs-core module they import
// is replaced by a tiny shim that re-exports the same function from the public
// `@tensorflow/tfjs-core` API (`ENGINE` becomes `engine()`). A module is inlined instead only when
// some name it must provide is not public (e.g. the op wrapper `conv2DBackpropFilter`); its own
// imports go through the same test, so the engine, tensor classes and registries are never copied.
//
// Usage: node scripts/gen-gradients.mjs [--check]   (--check exits 1 when the committed file is stale)
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgRoot = path.resolve(here, '..');
const outFile = path.join(pkgRoot, 'src/backend/gradients.gen.ts');
const require = createRequire(path.join(pkgRoot, 'package.json'));

const coreDir = path.dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
const coreVersion = JSON.parse(readFileSync(path.join(coreDir, 'package.json'), 'utf8')).version;
const dist = path.join(coreDir, 'dist');
const entry = path.join(dist, 'register_all_gradients.js');
const tf = require('@tensorflow/tfjs-core');

/** Public namespaces searched, in order, for a name an internal module must provide. */
const publicSources = [
  ['', tf],
  ['backend_util', tf.backend_util],
  ['util', tf.util],
  ['broadcast_util', tf.broadcast_util],
  ['slice_util', tf.slice_util],
];

/**
 * Names whose public equivalent is not a plain re-export. `ENGINE` is the global engine that
 * `engine()` returns; `getGlobalTensorClass` is only used for `instanceof`, and tfjs-core's Tensor
 * class answers `instanceof` by duck typing, so the public class is equivalent.
 */
const special = { ENGINE: 'tf.engine()', getGlobalTensorClass: '() => tf.Tensor' };

/** Expression (over the public namespace `tf`) giving `name`, or null when it is not public. */
function publicExpr(name) {
  if (Object.hasOwn(special, name)) return special[name];
  for (const [ns, obj] of publicSources) {
    if (obj != null && obj[name] !== undefined) return ns === '' ? `tf.${name}` : `tf.${ns}.${name}`;
  }
  return null;
}

const isGradientFile = (file) => file === entry || file.startsWith(path.join(dist, 'gradients') + path.sep);

function resolveSpec(importer, spec) {
  const base = path.resolve(path.dirname(importer), spec);
  for (const cand of [`${base}.js`, path.join(base, 'index.js'), base]) {
    try {
      readFileSync(cand);
      return cand;
    } catch {}
  }
  throw new Error(`gen-gradients: cannot resolve ${spec} from ${importer}`);
}

/** Imports of one ESM file of tfjs-core's dist: [{file, names}], names the bindings used from it. */
function importsOf(file) {
  const src = readFileSync(file, 'utf8');
  const out = [];
  for (const m of src.matchAll(/^import\s+([\s\S]*?)\s+from\s+'([^']+)';/gm)) {
    const [, clause, spec] = m;
    if (!spec.startsWith('.')) throw new Error(`gen-gradients: unexpected bare import ${spec} in ${file}`);
    const target = resolveSpec(file, spec);
    const names = new Set();
    const ns = /^\*\s+as\s+(\w+)$/.exec(clause.trim());
    if (ns) {
      // Namespace import: the members the file reads from it.
      for (const u of src.matchAll(new RegExp(`\\b${ns[1]}\\.(\\w+)`, 'g'))) names.add(u[1]);
    } else {
      for (const part of clause.replace(/[{}]/g, '').split(',')) {
        const name = part.trim().split(/\s+as\s+/)[0];
        if (name) names.add(name);
      }
    }
    out.push({ file: target, names });
  }
  for (const m of src.matchAll(/^import\s+'([^']+)';/gm))
    out.push({ file: resolveSpec(file, m[1]), names: new Set() });
  return out;
}

/** Decide which modules are inlined and which are shims, to a fixpoint. */
function plan() {
  const inlined = new Set();
  for (;;) {
    const needs = new Map();
    const seen = new Set();
    const stack = [entry];
    while (stack.length > 0) {
      const file = stack.pop();
      if (seen.has(file)) continue;
      seen.add(file);
      for (const { file: dep, names } of importsOf(file)) {
        if (isGradientFile(dep) || inlined.has(dep)) stack.push(dep);
        else {
          const set = needs.get(dep) ?? new Set();
          for (const n of names) set.add(n);
          needs.set(dep, set);
        }
      }
    }
    let changed = false;
    for (const [dep, names] of needs) {
      if ([...names].some((n) => publicExpr(n) === null)) {
        inlined.add(dep);
        changed = true;
      }
    }
    if (!changed) return { inlined, shims: needs };
  }
}

async function generate() {
  const esbuild = await import('esbuild');
  const { inlined, shims } = plan();
  const shimPlugin = {
    name: 'tfjs-core-public-shims',
    setup(build) {
      build.onResolve({ filter: /^\./ }, (args) => {
        const file = resolveSpec(args.importer, args.path);
        // Shim paths are relative to dist so that the output names no machine-specific path.
        if (shims.has(file)) return { path: path.relative(dist, file), namespace: 'tfshim' };
        return { path: file };
      });
      build.onLoad({ filter: /.*/, namespace: 'tfshim' }, (args) => {
        const names = [...shims.get(path.join(dist, args.path))].sort();
        const lines = ["import * as tf from '@tensorflow/tfjs-core';"];
        for (const n of names) lines.push(`export const ${n} = ${publicExpr(n)};`);
        return { contents: lines.join('\n'), loader: 'js', resolveDir: dist };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: dist,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    external: ['@tensorflow/tfjs-core'],
    legalComments: 'none',
    plugins: [shimPlugin],
    logLevel: 'silent',
  });
  const rel = (f) => path.relative(dist, f).split(path.sep).join('/');
  const header = [
    '// @ts-nocheck',
    '/* biome-ignore-all lint: generated file */',
    `// GENERATED by packages/core/scripts/gen-gradients.mjs from @tensorflow/tfjs-core ${coreVersion}`,
    '// dist/register_all_gradients.js (Apache-2.0, Copyright Google LLC). Do not edit: regenerate.',
    '// Registers every tfjs-core gradient into the tfjs-core instance that `@tensorflow/tfjs-core`',
    '// resolves to. Non-gradient tfjs-core modules are shimmed to its public API; inlined because',
    `// not public: ${[...inlined].map(rel).sort().join(', ') || 'none'}.`,
    '',
  ].join('\n');
  return header + result.outputFiles[0].text;
}

const code = await generate();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(outFile, 'utf8');
  } catch {}
  if (current !== code) {
    console.error(`${path.relative(process.cwd(), outFile)} is stale: run node scripts/gen-gradients.mjs`);
    process.exit(1);
  }
  console.log('gradients.gen.ts is up to date');
} else {
  writeFileSync(outFile, code);
  console.log(`wrote ${path.relative(process.cwd(), outFile)} (${code.length} bytes)`);
}
