import { QbnnError } from '@qbnn/core';

/**
 * A value of the restricted unpickler: Python's None, bool, int (a number when it is a safe
 * integer, else a bigint), float, str, bytes, list and tuple (both arrays), dict (a Map), or
 * whatever an allowed global or the persistent loader returned.
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | object;

/** An allowed Python callable: receives the REDUCE arguments, returns the value. */
export type PyCallable = (args: PyValue[]) => PyValue;

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** The only globals the pickle may name, by `module.name`. Everything else is refused. */
  globals: ReadonlyMap<string, PyCallable>;
  /** Resolves a persistent id (BINPERSID), e.g. a torch storage reference. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /**
   * Applies BUILD state to an object made by an allowed global. Default: refuse, except the
   * attribute dict of a Map (an OrderedDict's `_metadata`), which is ignored.
   */
  build?: (target: PyValue, state: PyValue) => PyValue;
}

/**
 * A pickle named a global that is not on the allow list. Nothing was executed: the unpickler
 * only resolves names from its table. `global` is `module.name`.
 */
export class UnsafePickleError extends QbnnError {
  readonly global: string;
  constructor(global: string, context: string) {
    super(
      'ERR_UNSUPPORTED',
      `${context}: refusing to load global '${global}' (only tensors and plain containers are read; nothing is executed)`,
    );
    this.name = 'UnsafePickleError';
    this.global = global;
  }
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/** A resolved, allowed global as it sits on the stack (e.g. a storage type in a persistent id). */
export class PyGlobal {
  constructor(
    readonly name: string,
    readonly fn: PyCallable,
  ) {}
}

function fail(msg: string): never {
  throw new QbnnError('ERR_FORMAT', `pickle: ${msg}`);
}

/**
 * Reads a pickle (protocols 0 to 5 binary opcodes, what `torch.save` writes with protocol 2)
 * without executing anything: GLOBAL names resolve only through `options.globals`, any other
 * name is an {@link UnsafePickleError}. Every length is checked against the input before use;
 * memory is bounded by the input size.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions, context = 'pickle'): PyValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;

  const need = (n: number, what: string): number => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      fail(`${what} of ${n} bytes at offset ${pos} runs past the end (${bytes.length} bytes)`);
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1, 'u8')];
  const u16 = () => view.getUint16(need(2, 'u16'), true);
  const u32 = () => view.getUint32(need(4, 'u32'), true);
  const u64 = () => {
    const v = view.getBigUint64(need(8, 'u64'), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated line');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    const v = stack.pop() as Slot;
    if (v === MARK) fail('unexpected mark');
    return v;
  };
  const top = (): Slot => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no mark on the stack');
    const items = stack.splice(i + 1) as PyValue[];
    stack.pop();
    return items;
  };
  const resolve = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    const fn = options.globals.get(full);
    if (!fn) throw new UnsafePickleError(full, context);
    return new PyGlobal(full, fn);
  };
  const asList = (v: PyValue, op: string): PyValue[] => {
    if (!Array.isArray(v)) fail(`${op} on a non-list`);
    return v;
  };
  const asDict = (v: Slot, op: string): Map<PyValue, PyValue> => {
    if (!(v instanceof Map)) fail(`${op} on a non-dict`);
    return v;
  };
  const call = (f: PyValue, args: PyValue, op: string): PyValue => {
    if (!(f instanceof PyGlobal)) fail(`${op} of a value that is not an allowed global`);
    if (!Array.isArray(args)) fail(`${op} arguments of '${f.name}' are not a tuple`);
    return f.fn(args);
  };
  const str = (at: number, n: number) => {
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return fail(`invalid UTF-8 string at offset ${at}`);
    }
  };
  const long = (n: number): number | bigint => {
    const at = need(n, 'long');
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
    if (bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('protocol above 5');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        asList(top() as PyValue, 'APPEND').push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = asList(top() as PyValue, 'APPENDS');
        for (const it of items) list.push(it);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const d = new Map<PyValue, PyValue>();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        asDict(top(), 'SETITEM').set(k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = asDict(top(), 'SETITEMS');
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4, 'int'), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(u8()));
        break;
      case 0x8b: {
        // LONG4
        const n = u32();
        if (n > 64) fail(`LONG4 of ${n} bytes`);
        stack.push(long(n));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(need(8, 'float'), false));
        break;
      case 0x58: {
        // BINUNICODE
        const n = u32();
        stack.push(str(need(n, 'string'), n));
        break;
      }
      case 0x8c: {
        // SHORT_BINUNICODE
        const n = u8();
        stack.push(str(need(n, 'string'), n));
        break;
      }
      case 0x8d: {
        // BINUNICODE8
        const n = u64();
        stack.push(str(need(n, 'string'), n));
        break;
      }
      case 0x54: // BINSTRING
      case 0x55: {
        // SHORT_BINSTRING (Python 2 str: bytes, read as latin-1)
        const n = op === 0x54 ? view.getInt32(need(4, 'length'), true) : u8();
        const at = need(n, 'string');
        stack.push(latin1.decode(bytes.subarray(at, at + n)));
        break;
      }
      case 0x42: // BINBYTES
      case 0x43: // SHORT_BINBYTES
      case 0x8e: {
        // BINBYTES8
        const n = op === 0x42 ? u32() : op === 0x43 ? u8() : u64();
        const at = need(n, 'bytes');
        stack.push(bytes.slice(at, at + n));
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(resolve(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof name !== 'string' || typeof module !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolve(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args, 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args, 'NEWOBJ'));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = pop();
        if (options.build) stack.push(options.build(target, state));
        else if (target instanceof Map && (state instanceof Map || state === null)) stack.push(target);
        else fail('BUILD (setting object state) is not allowed here');
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('persistent ids are not allowed here');
        stack.push(options.persistentLoad(pid));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top() as PyValue);
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top() as PyValue);
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top() as PyValue);
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo ${i} is not set`);
        stack.push(memo.get(i) as PyValue);
        break;
      }
      case 0x30: // POP
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported opcode 0x${op.toString(16)} at offset ${pos - 1}`);
    }
  }
}
