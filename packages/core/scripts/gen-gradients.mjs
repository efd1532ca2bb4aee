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
const require = createRequire(path.join(pkgRoot, 'package.json'));

const coreDir = path.dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
const coreVersion = JSON.parse(readFileSync(path.join(coreDir, 'package.json'), 'utf8')).version;
const dist = path.join(coreDir, 'dist');

/**
 * What is generated. Each entry file of tfjs-core's dist registers something as a side effect;
 * the files under `own` are bundled, everything else it reaches is shimmed or (if not public)
 * inlined. Chained ops (`x.square()`) are needed too: some gradients call them (Prod's calls
 * `.reshape()`), and tfjs-core's main registers none of them either.
 */
const targets = [
  {
    entry: path.join(dist, 'register_all_gradients.js'),
    own: path.join(dist, 'gradients'),
    out: path.join(pkgRoot, 'src/backend/gradients.gen.ts'),
    what: 'every tfjs-core gradient',
  },
  {
    entry: path.join(dist, 'public/chained_ops/register_all_chained_ops.js'),
    own: path.join(dist, 'public/chained_ops'),
    out: path.join(pkgRoot, 'src/backend/chained-ops.gen.ts'),
    what: 'every chained op (Tensor.prototype.square etc.)',
  },
];
const tf = require('@tensorflow/tfjs-core');

/** Public namespaces searched, in order, for a name an internal module must provide. */
const publicSources = [
  ['', tf],
  ['backend_util', tf.backend_util],
  ['util', tf.util],
  ['broadcast_util', tf.broadcast_util],
  ['slice_util', tf.slice_util],
  ['image', tf.image],
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

const isOwnFile = (target, file) => file === target.entry || file.startsWith(target.own + path.sep);

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
function plan(target) {
  const inlined = new Set();
  for (;;) {
    const needs = new Map();
    const seen = new Set();
    const stack = [target.entry];
    while (stack.length > 0) {
      const file = stack.pop();
      if (seen.has(file)) continue;
      seen.add(file);
      for (const { file: dep, names } of importsOf(file)) {
        if (isOwnFile(target, dep) || inlined.has(dep)) stack.push(dep);
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

async function generate(target) {
  const esbuild = await import('esbuild');
  const { inlined, shims } = plan(target);
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
    entryPoints: [target.entry],
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
    `// dist/${rel(target.entry)} (Apache-2.0, Copyright Google LLC). Do not edit: regenerate.`,
    `// Registers ${target.what} into the tfjs-core instance that`,
    '// `@tensorflow/tfjs-core` resolves to. Other tfjs-core modules are shimmed to its public API; inlined because',
    `// not public: ${[...inlined].map(rel).sort().join(', ') || 'none'}.`,
    '',
  ].join('\n');
  return header + result.outputFiles[0].text;
}

const check = process.argv.includes('--check');
let stale = false;
for (const target of targets) {
  const code = await generate(target);
  const name = path.relative(process.cwd(), target.out);
  if (check) {
    let current = '';
    try {
      current = readFileSync(target.out, 'utf8');
    } catch {}
    if (current !== code) {
      console.error(`${name} is stale: run node scripts/gen-gradients.mjs`);
      stale = true;
    } else console.log(`${name} is up to date`);
  } else {
    writeFileSync(target.out, code);
    console.log(`wrote ${name} (${code.length} bytes)`);
  }
}
if (stale) process.exit(1);
