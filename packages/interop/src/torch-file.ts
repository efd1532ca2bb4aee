import { QbnnError } from '@qbnn/core';
import { dtypeSize, type SafeDtype, type SafeTensor } from '@qbnn/nn';
import { type PyCallable, PyGlobal, type PyValue, unpickle } from './pickle.js';
import { LoadedTensor, numel } from './tensors.js';
import { ZipArchive } from './zip.js';

/** The legacy typed storage classes `torch.save` names in its persistent ids, by element type. */
const STORAGE_DTYPES: Record<string, SafeDtype> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const CTORS = {
  F32: Float32Array,
  F64: Float64Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  I32: Int32Array,
  U32: Uint32Array,
  I16: Int16Array,
  U16: Uint16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
} as const;

/** One storage of the archive: its element type and elements (read once, shared by views). */
class Storage {
  constructor(
    readonly dtype: SafeDtype,
    readonly elements: ArrayLike<number | bigint> & { length: number },
  ) {}
}

function fail(msg: string): never {
  throw new QbnnError('ERR_FORMAT', `torch file: ${msg}`);
}

function int(v: PyValue, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    fail(`${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}

function intList(v: PyValue, what: string): number[] {
  if (!Array.isArray(v)) fail(`${what} must be a tuple`);
  return v.map((x, i) => int(x, `${what}[${i}]`));
}

/** Copies the strided view (offset, size, stride) of a storage into a contiguous tensor. */
function viewOf(storage: Storage, offset: number, size: number[], stride: number[]): LoadedTensor {
  if (size.length !== stride.length) fail(`size [${size}] and stride [${stride}] differ in rank`);
  const n = numel(size);
  const have = storage.elements.length;
  if (n > 0) {
    let last = offset;
    for (let i = 0; i < size.length; i++) last += (size[i] - 1) * stride[i];
    if (n > have || last >= have) {
      fail(
        `tensor view (offset ${offset}, size [${size}], stride [${stride}]) exceeds its storage of ${have} elements`,
      );
    }
  }
  const out = new CTORS[storage.dtype](n);
  const src = storage.elements as unknown as ArrayLike<number> & ArrayLike<bigint>;
  const dst = out as unknown as { [i: number]: number | bigint };
  const rank = size.length;
  const idx = new Array<number>(rank).fill(0);
  let at = offset;
  for (let k = 0; k < n; k++) {
    dst[k] = src[at];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      at += stride[d];
      if (idx[d] < size[d]) break;
      at -= stride[d] * size[d];
      idx[d] = 0;
    }
  }
  return new LoadedTensor(storage.dtype, size, out);
}

/**
 * Reads a file written by `torch.save` (the zip format of PyTorch 1.6 and later) into plain
 * values: tensors become {@link LoadedTensor}s, dicts and OrderedDicts Maps, lists and tuples
 * arrays, and scalars numbers, strings, booleans or null. The pickle is read by a restricted
 * unpickler: any global other than the tensor rebuild functions, the storage types and
 * `collections.OrderedDict` is an `UnsafePickleError` naming it, and nothing is executed.
 * Storage sizes and tensor views are checked against the archive before anything is allocated.
 */
export function readTorchFile(bytes: Uint8Array): PyValue {
  if (!ZipArchive.looksLikeZip(bytes)) {
    throw new QbnnError(
      'ERR_FORMAT',
      'torch file: not a zip archive (files from torch.save before PyTorch 1.6, or with _use_new_zipfile_serialization=False, are not supported: re-save with a current torch.save)',
    );
  }
  const zip = new ZipArchive(bytes);
  const pkls = [...zip.entries.keys()].filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkls.length !== 1) fail(`expected one data.pkl entry, found ${pkls.length}`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const order = zip.entries.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(zip.read(order.name)) !== 'little') {
    throw new QbnnError('ERR_UNSUPPORTED', 'torch file: big-endian tensors are not supported');
  }
  const storages = new Map<string, Storage>();
  const load = (pid: PyValue): PyValue => {
    if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') fail('unknown persistent id');
    const [, type, key, , count] = pid;
    const dtype = type instanceof PyGlobal ? STORAGE_DTYPES[type.name.slice('torch.'.length)] : undefined;
    if (!dtype) fail('persistent id without a storage type');
    if (typeof key !== 'string' || !/^[A-Za-z0-9_]+$/.test(key)) fail(`bad storage key ${String(key)}`);
    const n = int(count, `storage ${key} element count`);
    const cached = storages.get(key);
    if (cached) return cached;
    const name = `${prefix}data/${key}`;
    const entry = zip.entries.get(name);
    if (!entry) fail(`storage ${key} has no entry '${name}'`);
    const size = dtypeSize(dtype);
    if (entry.size !== n * size) fail(`storage ${key}: ${entry.size} bytes for ${n} ${dtype} elements`);
    const raw = zip.read(name);
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    const s = new Storage(dtype, new CTORS[dtype](copy.buffer));
    storages.set(key, s);
    return s;
  };
  const rebuild = (args: PyValue[]): PyValue => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof Storage)) fail('tensor rebuilt from something that is not a storage');
    return viewOf(storage, int(offset, 'storage offset'), intList(size, 'size'), intList(stride, 'stride'));
  };
  const parameter = (args: PyValue[]): PyValue => {
    if (!(args[0] instanceof LoadedTensor)) fail('parameter without tensor data');
    return args[0];
  };
  const globals = new Map<string, PyCallable>([
    ['collections.OrderedDict', (args) => orderedDict(args)],
    ['torch._utils._rebuild_tensor_v2', rebuild],
    ['torch._utils._rebuild_tensor', rebuild],
    ['torch._utils._rebuild_parameter', parameter],
    ['torch._utils._rebuild_parameter_with_state', parameter],
  ]);
  // Storage types only mark persistent ids; calling one is refused.
  for (const name of Object.keys(STORAGE_DTYPES))
    globals.set(`torch.${name}`, () => fail(`storage type ${name} called`));
  return unpickle(zip.read(pkls[0]), { globals, persistentLoad: load }, 'torch file');
}

function orderedDict(args: PyValue[]): PyValue {
  const d = new Map<PyValue, PyValue>();
  if (args.length === 0) return d;
  if (args.length === 1 && Array.isArray(args[0])) {
    for (const pair of args[0]) {
      if (!Array.isArray(pair) || pair.length !== 2) fail('OrderedDict items must be pairs');
      d.set(pair[0], pair[1]);
    }
    return d;
  }
  return fail('OrderedDict with unexpected arguments');
}

/** Keys under which training scripts commonly nest a model's state dict inside a checkpoint. */
export const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'];

/**
 * The state dict inside a value read by {@link readTorchFile}: the value itself when it is a
 * dict of tensors, or the dict of tensors under one of {@link STATE_DICT_KEYS} (checkpoints that
 * also store the epoch or optimiser state). Non-tensor entries are an error naming them.
 */
export function stateDictOf(value: PyValue): Record<string, SafeTensor> {
  if (!(value instanceof Map)) fail('the file does not hold a dict (a state dict was expected)');
  const allTensors = (m: Map<PyValue, PyValue>) => [...m.values()].every((v) => v instanceof LoadedTensor);
  let dict: Map<PyValue, PyValue> = value;
  if (!allTensors(value)) {
    const key = STATE_DICT_KEYS.find((k) => value.get(k) instanceof Map);
    if (!key) {
      const bad = [...value.entries()]
        .filter(([, v]) => !(v instanceof LoadedTensor))
        .map(([k]) => String(k));
      fail(
        `not a state dict: entries [${bad.slice(0, 8).join(', ')}] are not tensors, and there is no nested ${STATE_DICT_KEYS.join(' / ')} dict`,
      );
    }
    dict = value.get(key) as Map<PyValue, PyValue>;
    if (!allTensors(dict)) fail(`'${key}' holds values that are not tensors`);
  }
  const out: Record<string, SafeTensor> = {};
  for (const [k, v] of dict) {
    if (typeof k !== 'string') fail(`state dict key ${String(k)} is not a string`);
    out[k] = v as LoadedTensor;
  }
  return out;
}

/** Reads the state dict of a `torch.save` file (see {@link readTorchFile}, {@link stateDictOf}). */
export function readTorchStateDict(bytes: Uint8Array): Record<string, SafeTensor> {
  return stateDictOf(readTorchFile(bytes));
}
