import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, removeStaleTempFiles, save, saveSafetensors } from '@qbnn/nn/node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeProbeName } from '../src/file-flags.js';
import { BAYES_ARCH } from '../src/lib/models.js';
import { run } from './run.js';

// The line every heavy command prints once it has set up tfjs: its absence means no work began.
const WORK_STARTED = /tfjs backend/;

const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-reliab-'));
const ckpt = join(dir, 'm.safetensors');
const ptq = join(dir, 'm-ptq-w8a8.safetensors');
/** The tiny MLP of the issue's reproducers, trained into `out`. */
const tinyTrain = (out: string) => [
  'train',
  '--model',
  'mlp',
  '--train-size',
  '64',
  '--test-size',
  '32',
  '--out',
  out,
];

// Hostile but realistic command lines against a tiny trained MLP and its PTQ model (built once).
test('a write probe left by a killed process is removed by the next save like an interrupted save', async () => {
  const d = mkdtempSync(join(tmpdir(), 'qbnn-probe-'));
  const dead = spawnSync('true').pid as number;
  const name = writeProbeName(dead);
  writeFileSync(join(d, name), '');
  expect(await removeStaleTempFiles(d)).toEqual([name]);
  expect(readdirSync(d)).toEqual([]);
  rmSync(d, { recursive: true });
});

describe('hostile command lines: refused before any work, inputs never overwritten', {
  timeout: 120_000,
}, () => {
  beforeAll(async () => {
    const t = await run(...tinyTrain(ckpt), '--epochs', '1', '--quiet', '--no-native');
    expect(t.code, t.err).toBe(0);
    const q = await run(
      'quantize',
      '--checkpoint',
      ckpt,
      '--calibration-size',
      '32',
      '--quiet',
      '--no-native',
    );
    expect(q.code, q.err).toBe(0);
    expect(existsSync(ptq)).toBe(true);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs a command that must be refused: exit 2, the message names `flag`, and no work began. */
  async function refused(argv: string[], flag: string, message: RegExp | string): Promise<string> {
    const r = await run(...argv);
    expect(r.code, `${argv.join(' ')}\n${r.err}`).toBe(2);
    expect(r.err, argv.join(' ')).toContain(flag);
    if (typeof message === 'string') expect(r.err, argv.join(' ')).toContain(message);
    else expect(r.err, argv.join(' ')).toMatch(message);
    return r.err;
  }

  test('D13: devices, FIFOs, folders and missing files as inputs are refused without opening them', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // a FIFO with no writer would block the open forever; /dev/zero would be read without end
    await refused(
      ['eval', '--quantized', '/dev/zero'],
      '--quantized',
      'is a character device, not a regular file',
    );
    await refused(
      ['eval', '--checkpoint', fifo],
      '--checkpoint',
      'is a FIFO (named pipe), not a regular file',
    );
    await refused(['quantize', '--checkpoint', ckpt, '--qconfig', fifo], '--qconfig', 'FIFO');
    await refused(['report', '--results', fifo], '--results', 'FIFO');
    await refused(['eval', '--checkpoint', dir], '--checkpoint', 'is a directory, not a regular file');
    await refused(
      ['eval', '--quantized', `${ptq},${join(dir, 'absent.safetensors')}`],
      '--quantized',
      'no such file',
    );
    await refused(['quantize', '--checkpoint', join(dir, 'absent')], '--checkpoint', 'no such file');
    await refused(['train', '--plugin', join(dir, 'absent.mjs')], '--plugin', 'no such file');
    await refused(['eval', '--checkpoint', ''], '--checkpoint', 'must name a file');
    for (const argv of [
      ['eval', '--quantized', '/dev/zero'],
      ['eval', '--checkpoint', fifo],
    ]) {
      expect((await run(...argv)).err).not.toMatch(WORK_STARTED);
    }
  });

  test('D15: an output that cannot be written is refused before training, naming the flag', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const [out, why] of [
      [join(file, 'm.safetensors'), `${file} is a regular file, so nothing can be created under it`],
      [join(file, 'sub', 'm.safetensors'), 'nothing can be created under it'],
      ['/proc/qbnn-test.safetensors', 'cannot create files in /proc'],
      [dir, 'is a directory; give the path of a file to write'],
      ['', 'must name a file'],
      [`${dir}/`, 'names a folder'],
      ['/dev/null', 'is a character device'],
    ] as const) {
      const err = await refused(tinyTrain(out), '--out', why);
      expect(err).not.toMatch(WORK_STARTED);
    }
    await refused(
      ['eval', '--quantized', ptq, '--report', '/proc/r.html'],
      '--report',
      'cannot create files in /proc',
    );
    await refused(
      ['eval', '--quantized', ptq, '--out', join(file, 'r.json')],
      '--out',
      'nothing can be created',
    );
    await refused(['report', '--results', join(dir, 'absent.json')], '--results', 'no such file');
    await refused(['demo', '--out-dir', file], '--out-dir', 'nothing can be created under it');
    await refused(['demo', '--out-dir', ''], '--out-dir', 'must name a folder');
    await refused(['sweep', '--out-dir', '/proc/qbnn-sweep'], '--out-dir', 'cannot create files in /proc');
    // nothing was left behind by the checks (no probe files, no folders)
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  test('D16: an output that is an input (or another output) is refused: the input stays as it was', async () => {
    const before = new Map([ckpt, ptq].map((p) => [p, readFileSync(p)]));
    const cwdRelative = relative(process.cwd(), ckpt);
    const link = join(dir, 'link.safetensors');
    symlinkSync(ckpt, link);
    const hard = join(dir, 'hard.safetensors');
    linkSync(ckpt, hard);
    // not join(): it would normalise the ./ and .. away
    const dotted = `${dir}/./sub/../m.safetensors`;
    mkdirSync(join(dir, 'sub'));
    const results = join(dir, 'r.json');
    for (const out of [ckpt, `./${cwdRelative}`, dotted, link, hard]) {
      await refused(
        ['quantize', '--checkpoint', ckpt, '--out', out],
        '--out',
        `is the same file as the input --checkpoint ${ckpt}`,
      );
    }
    for (const [argv, flag, message] of [
      [['quantize', '--checkpoint', link, '--out', ckpt], '--out', 'same file as the input --checkpoint'],
      [['eval', '--checkpoint', ckpt, '--out', ckpt], '--out', 'same file as the input --checkpoint'],
      [
        ['eval', '--quantized', ptq, '--out', `${dir}/./sub/../m-ptq-w8a8.safetensors`],
        '--out',
        '--quantized',
      ],
      [['eval', '--quantized', ptq, '--report', ptq], '--report', 'same file as the input --quantized'],
      [['eval', '--checkpoint', ckpt, '--report', ckpt], '--report', 'same file as the input --checkpoint'],
      [
        ['eval', '--quantized', ptq, '--out', results, '--report', `${dir}/sub/../r.json`],
        '--report',
        `is the same file as --out ${results}`,
      ],
    ] as const) {
      await refused([...argv], flag, message);
    }
    writeFileSync(results, '{}');
    const resultsBefore = readFileSync(results);
    await refused(
      ['report', '--results', results, '--out', results],
      '--out',
      'same file as the input --results',
    );
    expect(readFileSync(results).equals(resultsBefore)).toBe(true);
    // Buffer.equals: a deep toEqual over megabytes takes seconds
    for (const [p, bytes] of before) expect(readFileSync(p).equals(bytes), p).toBe(true);
  });

  test('D11: a checkpoint naming an unknown data set (wrong case, a path) is refused, never read as Fashion-MNIST', async () => {
    const { model, config } = await load(ckpt);
    const cfg = config as { dataset: Record<string, unknown> };
    for (const name of ['MNIST', '/usr/share/datasets/mnist', 'Fashion-MNIST']) {
      const bad = join(dir, 'bad-data.safetensors');
      await save(model, bad, { arch: BAYES_ARCH, config: { ...cfg, dataset: { ...cfg.dataset, name } } });
      const message = `config.dataset.name is ${JSON.stringify(name)}, not a known data set (known: mnist, fashion-mnist; names are exact)`;
      await refused(['eval', '--checkpoint', bad, '--no-native', '--quiet'], '--checkpoint', message);
      await refused(['quantize', '--checkpoint', bad, '--no-native', '--quiet'], '--checkpoint', message);
    }
    // sizes in the config are checked before the model is built (1e9 hidden units would allocate without bound)
    const huge = join(dir, 'bad-size.safetensors');
    await save(model, huge, { arch: BAYES_ARCH, config: { ...cfg, hidden: 1e9 } });
    await refused(
      ['eval', '--checkpoint', huge, '--no-native'],
      '--checkpoint',
      'config.hidden must be an integer in [1, 4096]; got 1000000000',
    );
    model.dispose();
  });

  test("eval / quantize --data FILE: examples the checkpoint's model cannot take and labels it has no class for are typed errors", async () => {
    // were 'BayesLinear: expected input [N, 784], got [256,100]' (the Monte Carlo batch's shape)
    // and an untyped MetricsError with its stack trace
    const data = async (name: string, shape: number[], label: number) => {
      const path = join(dir, name);
      const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
      const y = new Int32Array(shape[0]).fill(label);
      await saveSafetensors(path, {
        x: { dtype: 'F32', shape, data: x },
        y: { dtype: 'I32', shape: [shape[0]], data: y },
      });
      return run(
        'eval',
        '--checkpoint',
        ckpt,
        '--data',
        path,
        '--ood',
        'none',
        '--quiet',
        '--no-native',
        '--out',
        join(dir, `${name}.json`),
      );
    };
    const wide = await data('wide.safetensors', [4, 100], 1);
    expect(wide.code).toBe(1);
    expect(wide.err).toMatch(
      /error \[ERR_FORMAT\]: --data .*wide\.safetensors: 'x' holds examples of \[100\] \(100 values\), but the checkpoint's mlp takes \[784\] \(784 values\)\n/,
    );
    const label = await data('label.safetensors', [4, 784], 11);
    expect(label.code).toBe(1);
    expect(label.err).toMatch(
      /error \[ERR_FORMAT\]: the test labels hold class index 11 at index 0, but model 'float32' has 10 classes \(0 to 9\)\n/,
    );
    expect(label.err).not.toMatch(/\n\s+at /);
    // MNIST-sized images saved as [N, 1, 28, 28] are read in the MLP's [784]
    const images = await data('images.safetensors', [4, 1, 28, 28], 3);
    expect(images.code, images.err).toBe(0);
    // quantize's calibration data likewise (was tfjs' untyped matMul error with its stack)
    const q = (name: string) =>
      run(
        'quantize',
        '--checkpoint',
        ckpt,
        '--data',
        join(dir, name),
        '--calibration-size',
        '4',
        '--quiet',
        '--no-native',
        '--out',
        join(dir, `q-${name}`),
      );
    const qWide = await q('wide.safetensors');
    expect(qWide.code).toBe(1);
    expect(qWide.err).toMatch(
      /error \[ERR_FORMAT\]: --data .*wide\.safetensors: 'x' holds examples of \[100\]/,
    );
    const qImages = await q('images.safetensors');
    expect(qImages.code, qImages.err).toBe(0);
  });

  test("D12 (the cli's checkpoints): SGHMC ensembles are sized from the file, not from the config", async () => {
    const sghmc = join(dir, 'sghmc.safetensors');
    const t = await run(
      ...tinyTrain(sghmc),
      ...[
        '--posterior',
        'sghmc',
        '--epochs',
        '2',
        '--batch-size',
        '16',
        '--members',
        '2',
        '--quiet',
        '--no-native',
      ],
    );
    expect(t.code, t.err).toBe(0);
    const { model, config } = await load(sghmc);
    const cfg = config as { members: number };
    expect(cfg.members).toBe(2);
    const evalArgs = (ckptPath: string) => [
      'eval',
      '--checkpoint',
      ckptPath,
      '--ood',
      'none',
      '--samples',
      '2',
      '--out',
      join(dir, 'sghmc-results.json'),
      '--quiet',
      '--no-native',
      '--json',
    ];
    // a config that claims more members than the file holds: the file's two are used
    const wrong = join(dir, 'sghmc-wrong-members.safetensors');
    await save(model, wrong, { arch: BAYES_ARCH, config: { ...cfg, members: 7 } });
    const r = await run(...evalArgs(wrong));
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).models[0].metrics.accuracy).toBeGreaterThan(0);
    // the issue's reproducer: members 1e9 used to allocate without bound
    const huge = join(dir, 'sghmc-huge-members.safetensors');
    await save(model, huge, { arch: BAYES_ARCH, config: { ...cfg, members: 1e9 } });
    await refused(
      evalArgs(huge),
      '--checkpoint',
      'config.members must be an integer in [0, 100]; got 1000000000',
    );
    model.dispose();
  });

  test('D17: a --qconfig override for a layer the model does not have is refused, listing its layers', async () => {
    const qc = join(dir, 'qc.json');
    writeFileSync(
      qc,
      JSON.stringify({ layers: { fc9: { weight: { bits: 4 } }, fc1: { weight: { bits: 6 } } } }),
    );
    const out = join(dir, 'never.safetensors');
    const err = await refused(
      ['quantize', '--checkpoint', ckpt, '--qconfig', qc, '--out', out, '--quiet', '--no-native'],
      '--qconfig',
      "'fc9' matches no layer of the model; its layer paths: fc1, relu1, fc2, relu2, fc3",
    );
    expect(err).toContain(`--qconfig ${qc}`);
    expect(existsSync(out)).toBe(false);
  });

  test('report: a damaged results file is refused naming the field, not a crash; JSON inputs are size-capped', async () => {
    const results = join(dir, 'damaged.json');
    const good = {
      format: 'qbnn-results/1',
      title: 't',
      createdAt: 'now',
      config: { seed: 0 },
      notes: [],
      models: [
        {
          name: 'float32',
          metrics: { accuracy: 0.9, nll: null },
          reliability: [{ confidence: 0.5, accuracy: 0.5, count: 3 }],
          entropy: { correct: [0.1], wrong: [], ood: [] },
          referral: [{ fraction: 0, accuracy: 0.9 }],
          roc: [],
        },
      ],
    };
    const out = join(dir, 'damaged.html');
    for (const [damage, message] of [
      [{ models: [{}] }, 'results.models[0].name must be a string; got nothing'],
      [
        { models: [{ ...good.models[0], metrics: null }] },
        'results.models[0].metrics must be an object; got null',
      ],
      [
        { models: [{ ...good.models[0], entropy: { correct: ['x'], wrong: [], ood: [] } }] },
        'results.models[0].entropy.correct[0] must be a number; got "x"',
      ],
      [{ notes: 'one note' }, 'results.notes must be an array; got "one note"'],
      [{ config: { nested: { a: 1 } } }, 'results.config.nested must be a string, number or boolean'],
      [{ sweep: [{ posterior: 'g' }] }, 'results.sweep[0].sweep must be a string'],
    ] as const) {
      writeFileSync(results, JSON.stringify({ ...good, ...damage }));
      await refused(['report', '--results', results, '--out', out], `--results ${results}`, message);
    }
    expect(existsSync(out)).toBe(false);
    writeFileSync(results, JSON.stringify(good));
    expect((await run('report', '--results', results, '--out', out)).code).toBe(0);
    // sizes are checked before reading: a 2 MB qconfig is refused, not parsed
    const qc = join(dir, 'big-qconfig.json');
    writeFileSync(qc, `{"layers":{}${' '.repeat(2 ** 21)}}`);
    await refused(
      ['quantize', '--checkpoint', ckpt, '--qconfig', qc],
      '--qconfig',
      'more than the 1048576 such a file may have',
    );
  });

  test('D14: an output written by the cli removes stale temp files of interrupted saves in its folder', async () => {
    const folder = join(dir, 'outs');
    mkdirSync(folder);
    // what a kill -9 during a save leaves: our temp name pattern, a PID that is no live process
    const stale = '.report.html.2147483646.0123456789ab.tmp';
    const foreign = 'notes.tmp';
    writeFileSync(join(folder, stale), 'half a file');
    writeFileSync(join(folder, foreign), 'not ours');
    const results = join(folder, 'r.json');
    writeFileSync(
      results,
      JSON.stringify({
        format: 'qbnn-results/1',
        title: 't',
        createdAt: 'now',
        config: {},
        notes: [],
        models: [],
      }),
    );
    const r = await run('report', '--results', results, '--out', join(folder, 'report.html'));
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(folder).sort()).toEqual([foreign, 'r.json', 'report.html']);
  });

  test('D18: a plugin that never settles, throws or registers nothing gets a clear message', async () => {
    const plugin = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const hang = plugin('hang.mjs', 'await new Promise(() => {});\n');
    const t0 = performance.now();
    await refused(
      ['train', '--plugin', hang, '--plugin-timeout', '0.3', '--out', join(dir, 'x.safetensors')],
      `--plugin ${hang}`,
      'its import did not finish within 0.3 s (does it await something that never settles?); --plugin-timeout SECONDS allows longer',
    );
    expect(performance.now() - t0).toBeLessThan(20_000);
    const hangFn = plugin('hang-fn.mjs', 'export default () => new Promise(() => {});\n');
    await refused(
      ['train', '--plugin', hangFn, '--plugin-timeout', '0.2'],
      '--plugin',
      'its default export (called with { core, nn, posteriors, qat }) did not finish within 0.2 s',
    );
    const throws = plugin('throws.mjs', "throw new Error('plugin exploded');\n");
    await refused(['train', '--plugin', throws], `--plugin ${throws}`, 'importing it threw: plugin exploded');
    const fnThrows = plugin(
      'fn-throws.mjs',
      "export default () => { throw new TypeError('bad api use'); };\n",
    );
    await refused(['train', '--plugin', fnThrows], '--plugin', 'its default export threw: bad api use');
    const nothing = plugin('nothing.mjs', 'export const register = () => {};\nexport const version = 1;\n');
    await refused(
      ['train', '--plugin', nothing],
      '--plugin',
      'it registered nothing (no posterior, architecture, integer form or kernel provider)',
    );
    expect((await run('train', '--plugin', nothing)).err).toContain('its exports: register, version');
    // A plugin may register only an integer form (e.g. for a posterior another plugin provides).
    const formOnly = plugin(
      'form-only.mjs',
      "const no = () => { throw new Error('unused'); };\nexport default ({ qat }) => qat.registerIntegerForm({ kind: 'probe-form-only', stochastic: () => false, sample: no, sizeBytes: () => 0, weightBits: () => 8, save: no, load: no });\n",
    );
    const accepted = await run('train', '--plugin', formOnly, '--posterior', 'no-such-posterior');
    expect(accepted.err).not.toContain('registered nothing');
    expect(accepted.err).toContain('no-such-posterior');
  });
});

// The built command in a plain node process: a never-settling plugin import used to end it with
// exit code 13 and no message.
const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
describe.skipIf(!existsSync(bin))('the built qbnn command (dist/bin.js)', () => {
  test('D18: a plugin whose import never settles: exit 2 with a message, not 13 with none', () => {
    const d = mkdtempSync(join(tmpdir(), 'qbnn-cli-bin-'));
    const hang = join(d, 'hang.mjs');
    writeFileSync(hang, 'await new Promise(() => {});\n');
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'train',
        '--plugin',
        hang,
        '--plugin-timeout',
        '0.5',
        '--no-native',
        '--out',
        join(d, 'm.safetensors'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    rmSync(d, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--plugin ${hang}: its import did not finish within 0.5 s`);
  });
});
if (!existsSync(bin)) console.log(`skipping the dist/bin.js test: run pnpm build first (${bin} is missing)`);
