import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QbnnError } from '@qbnn/core';
import { describe, expect, it } from 'vitest';
import { UnsafePickleError, unpickle } from '../src/pickle.js';
import { readTorchFile, readTorchStateDict } from '../src/torch-file.js';
import { haveTorch, python } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-torchfile-'));
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(dir, name)));

describe.runIf(haveTorch())('readTorchFile on files written by torch.save', () => {
  python(`
import collections
sd = collections.OrderedDict()
sd['a.weight'] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
sd['b'] = torch.tensor([1.5, -2.0], dtype=torch.float64)
sd['c'] = torch.tensor(7)
sd['h'] = torch.tensor([1.0, 0.5, -65504.0], dtype=torch.float16)
sd['bf'] = torch.tensor([3.0, -0.125], dtype=torch.bfloat16)
sd['v'] = torch.arange(10, dtype=torch.float32)[2:8:2]
sd['empty'] = torch.zeros(0, 3)
sd['flag'] = torch.tensor([True, False])
torch.save(sd, '${dir}/a.pt')
torch.save({'epoch': 3, 'state_dict': sd}, '${dir}/b.pt')
torch.save(torch.nn.Linear(2, 2), '${dir}/module.pt')
torch.save({'w': torch.ones(2), 'arr': __import__('numpy').zeros(2)}, '${dir}/numpy.pt')
`);

  it('reads views, dtypes and shared storages exactly', () => {
    const sd = readTorchStateDict(bytesOf('a.pt'));
    expect(Object.keys(sd)).toEqual(['a.weight', 'b', 'c', 'h', 'bf', 'v', 'empty', 'flag']);
    // a transposed view: element [i][j] is 4 j + i
    expect(sd['a.weight'].shape).toEqual([4, 3]);
    expect(Array.from(sd['a.weight'].data as Float32Array)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(sd.b.dtype).toBe('F64');
    expect(Array.from(sd.b.data as Float64Array)).toEqual([1.5, -2]);
    expect(sd.c.dtype).toBe('I64');
    expect(sd.c.shape).toEqual([]);
    expect(Array.from(sd.c.data as BigInt64Array)).toEqual([7n]);
    expect(sd.h.dtype).toBe('F16');
    expect(Array.from(sd.v.data as Float32Array)).toEqual([2, 4, 6]);
    expect(sd.empty.shape).toEqual([0, 3]);
    expect(sd.flag.dtype).toBe('BOOL');
    expect(Array.from(sd.flag.data as Uint8Array)).toEqual([1, 0]);
  });

  it('finds a state dict nested in a training checkpoint', () => {
    const sd = readTorchStateDict(bytesOf('b.pt'));
    expect(Object.keys(sd)).toContain('a.weight');
  });

  it('refuses a pickled module, naming the global, without executing anything', () => {
    const err = (() => {
      try {
        readTorchFile(bytesOf('module.pt'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as UnsafePickleError).global).toBe('torch.nn.modules.linear.Linear');
    expect((err as QbnnError).code).toBe('ERR_UNSUPPORTED');
  });

  it('refuses numpy arrays (reconstructed through globals)', () => {
    expect(() => readTorchFile(bytesOf('numpy.pt'))).toThrow(/refusing to load global 'numpy/);
  });

  it('rejects a corrupted storage and a truncated archive', () => {
    const good = bytesOf('a.pt');
    const bad = good.slice();
    // flip a byte inside the first storage's data (after the pickle): CRC-32 catches it
    const at = Buffer.from(bad).indexOf('data/0') + 200;
    bad[at] ^= 0xff;
    expect(() => readTorchFile(bad)).toThrow(QbnnError);
    expect(() => readTorchFile(good.subarray(0, good.length - 30))).toThrow(/zip/);
  });

  it('an entry name that is not UTF-8 in the central directory is an ERR_FORMAT', () => {
    // was TextDecoder's untyped TypeError 'The encoded data was not valid for encoding utf-8'
    const bad = bytesOf('a.pt').slice();
    const view = Buffer.from(bad.buffer, bad.byteOffset, bad.byteLength);
    const central = view.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); // the first central entry
    expect(central).toBeGreaterThan(0);
    bad[central + 46] = 0xff; // the first byte of its name
    expect(() => readTorchFile(bad)).toThrow(QbnnError);
    expect(() => readTorchFile(bad)).toThrow(/zip: central entry 0: its name is not valid UTF-8/);
  });
});

/** Pickle opcodes for hand-made hostile files. */
const str = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return Buffer.concat([Buffer.from('X'), n, b]);
};
const ascii = (s: string) => Buffer.from(s, 'latin1');
/** `{'w': _rebuild_tensor_v2(storage(numel), 0, size, stride, False, OrderedDict())}` */
function tensorPickle(numel: number, size: number[], stride: number[]): Buffer {
  const tuple = (xs: number[]) =>
    Buffer.concat([
      ascii('('),
      ...xs.map((x) => Buffer.from([0x4a, ...new Uint8Array(new Int32Array([x]).buffer)])),
      ascii('t'),
    ]);
  return Buffer.concat([
    Buffer.from([0x80, 2]),
    ascii('}'),
    str('w'),
    ascii('ctorch._utils\n_rebuild_tensor_v2\n('),
    ascii('('),
    str('storage'),
    ascii('ctorch\nFloatStorage\n'),
    str('0'),
    str('cpu'),
    tuple([numel]).subarray(1, 6),
    ascii('tQ'),
    Buffer.from([0x4b, 0]),
    tuple(size),
    tuple(stride),
    Buffer.from([0x89]),
    ascii('ccollections\nOrderedDict\n)R'),
    ascii('tR'),
    ascii('s.'),
  ]);
}

describe.runIf(existsSync('/usr/bin/python3'))('readTorchFile on crafted archives', () => {
  const files: Record<string, [Buffer, number]> = {
    'ok.pt': [tensorPickle(4, [2, 2], [2, 1]), 16],
    'view.pt': [tensorPickle(4, [100], [1]), 16],
    'stride.pt': [tensorPickle(4, [2, 2], [3, 1]), 16],
    'short.pt': [tensorPickle(1000000000, [4], [1]), 16],
    'evil.pt': [
      Buffer.concat([
        Buffer.from([0x80, 2]),
        ascii('cos\nsystem\n'),
        str('touch /tmp/pwned'),
        ascii('\x85R.'),
      ]),
      0,
    ],
  };
  // Zips written by Python's zipfile, each holding archive/data.pkl and archive/data/0.
  python(
    `import zipfile\n${Object.entries(files)
      .map(
        ([name, [pkl, n]]) =>
          `with zipfile.ZipFile('${dir}/${name}', 'w', zipfile.ZIP_STORED) as z:\n    z.writestr('archive/data.pkl', bytes.fromhex('${pkl.toString('hex')}'))\n    z.writestr('archive/data/0', bytes(${n}))`,
      )
      .join('\n')}`,
    { torch: false },
  );
  const archive = (name: string) => bytesOf(name);

  it('reads a well-formed hand-made file', () => {
    const sd = readTorchStateDict(archive('ok.pt'));
    expect(sd.w.shape).toEqual([2, 2]);
  });

  it('refuses a view reaching past its storage and a storage smaller than declared', () => {
    expect(() => readTorchFile(archive('view.pt'))).toThrow(/exceeds its storage/);
    expect(() => readTorchFile(archive('stride.pt'))).toThrow(/exceeds its storage/);
    expect(() => readTorchFile(archive('short.pt'))).toThrow(/16 bytes for 1000000000/);
  });

  it('refuses any other global, e.g. os.system, naming it', () => {
    expect(() => readTorchFile(archive('evil.pt'))).toThrow(/refusing to load global 'os.system'/);
  });
});

describe('readTorchFile on hostile bytes', () => {
  it('names the format when the bytes are not a zip archive', () => {
    expect(() => readTorchFile(new Uint8Array([0x80, 2, 0x8a, 10]))).toThrow(/not a zip archive/);
  });
});

describe('unpickle on hostile bytes', () => {
  const none = { globals: new Map() };
  const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
  it('checks lengths against the input before reading', () => {
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x58, 0xf0, 0xff, 0xff, 0xff, 0x2e]), none)).toThrow(
      /runs past the end/,
    );
    expect(() =>
      unpickle(new Uint8Array([0x80, 2, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]), none),
    ).toThrow(/too large|runs past/);
  });
  it('rejects malformed programs with ERR_FORMAT', () => {
    for (const bad of ['\x80\x02h\x05.', '\x80\x02s.', '\x80\x02)).', '\x80\x02\xff', '\x80\x02N']) {
      let err: unknown;
      try {
        unpickle(ascii(bad), none);
      } catch (e) {
        err = e;
      }
      expect((err as QbnnError).code).toBe('ERR_FORMAT');
    }
  });
  it('reads plain containers and scalars (bytes from Python 3 pickle.dumps, protocol 2)', () => {
    // pickle.dumps({'a': [1, -2, 3.5, True, None, 'é'], 'b': (70000, 2**70)}, protocol=2)
    const hex =
      '80027d71002858010000006171015d7102284b014afeffffff47400c000000000000884e5802000000c3a971036558010000006271044a701101008a09000000000000000040867105752e';
    const v = unpickle(new Uint8Array(Buffer.from(hex, 'hex')), none) as Map<string, unknown>;
    expect(v.get('a')).toEqual([1, -2, 3.5, true, null, 'é']);
    expect(v.get('b')).toEqual([70000, 2n ** 70n]);
  });
});
