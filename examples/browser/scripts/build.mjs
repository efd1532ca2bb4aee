#!/usr/bin/env node
// Bundles the example with esbuild into dist/ (app.js with the WebAssembly kernels embedded,
// index.html, style.css) and reports the gzipped size of what a browser downloads besides the
// model weights. `node scripts/build.mjs [outDir]`; the model is written by scripts/make-model.mjs.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the page into `outDir`; returns the sizes in bytes. */
export async function buildExample(outDir = join(root, 'dist')) {
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'src', 'app.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    // The workspace packages' TypeScript sources when present (no build needed), else their dist.
    conditions: ['@qbnn/source'],
    outfile: join(outDir, 'app.js'),
    metafile: true,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'style.css']) copyFileSync(join(root, 'public', f), join(outDir, f));
  const files = ['app.js', 'index.html', 'style.css'].map((f) => {
    const bytes = readFileSync(join(outDir, f));
    return { file: f, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  const sizes = {
    files,
    totalGzip: files.reduce((s, f) => s + f.gzip, 0),
    inputs: Object.keys(result.metafile.inputs).length,
  };
  writeFileSync(join(outDir, 'size.json'), `${JSON.stringify(sizes, null, 2)}\n`);
  return sizes;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizes = await buildExample(process.argv[2] ? resolve(process.argv[2]) : undefined);
  for (const f of sizes.files) console.log(`${f.file.padEnd(12)} ${f.bytes} B, ${f.gzip} B gzipped`);
  console.log(
    `total gzipped (JS with the embedded wasm kernels, HTML, CSS; no weights): ${(sizes.totalGzip / 1024).toFixed(1)} KiB`,
  );
}
