import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { main } from '../src/cli.js';
import { installInterruptHandler, isInterrupted } from '../src/interrupt.js';

// Its own file: the interrupt flag stays set for the rest of the process (vitest forks per file).
describe('Ctrl-C', () => {
  test('stops training at a safe point: exit 130, the old checkpoint untouched, no temp files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-int-'));
    const ckpt = join(dir, 'model.safetensors');
    writeFileSync(ckpt, 'the previous checkpoint');
    installInterruptHandler();
    let err = '';
    let out = '';
    // The first SIGINT asks for a stop at the next safe point (a second one would exit at once).
    setTimeout(() => process.emit('SIGINT'), 1500);
    const code = await main(
      [
        'train',
        '--model',
        'mlp',
        '--train-size',
        '2000',
        '--test-size',
        '10',
        '--epochs',
        '50',
        '--out',
        ckpt,
        '--quiet',
      ],
      { out: (s) => (out += s), err: (s) => (err += s) },
    );
    expect(isInterrupted()).toBe(true);
    expect(code).toBe(130);
    expect(err).toContain('interrupted (Ctrl-C)');
    expect(out).toBe('');
    expect(readFileSync(ckpt, 'utf8')).toBe('the previous checkpoint');
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    rmSync(dir, { recursive: true, force: true });
  });
});
