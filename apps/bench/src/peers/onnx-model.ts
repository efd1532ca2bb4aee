// Builds tiny ONNX models (one MatMulInteger or MatMul node with constant weights) in memory,
// so the gemm suite runs ONNX Runtime on exactly the shapes and data qbnn runs. The protobuf
// wire format is small enough to write by hand: varints and length-delimited fields.

type Field = [number, 'varint', number] | [number, 'bytes', Uint8Array];

function varint(v: number): number[] {
  const out: number[] = [];
  let x = v;
  while (x > 0x7f) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
  return out;
}

function message(fields: Field[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const [num, kind, value] of fields) {
    if (kind === 'varint') {
      chunks.push(Uint8Array.from([...varint(num * 8), ...varint(value)]));
    } else {
      chunks.push(Uint8Array.from([...varint(num * 8 + 2), ...varint(value.length)]), value);
    }
  }
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

const str = (s: string) => new TextEncoder().encode(s);

/** ONNX TensorProto.DataType values used here. */
const OnnxType = { float: 1, uint8: 2, int8: 3, int32: 6 } as const;

function valueInfo(name: string, elemType: number, dims: number[]): Uint8Array {
  const shape = message(dims.map((d): Field => [1, 'bytes', message([[1, 'varint', d]])]));
  const tensorType = message([
    [1, 'varint', elemType],
    [2, 'bytes', shape],
  ]);
  return message([
    [1, 'bytes', str(name)],
    [2, 'bytes', message([[1, 'bytes', tensorType]])],
  ]);
}

function initializer(name: string, elemType: number, dims: number[], raw: Uint8Array): Uint8Array {
  return message([
    ...dims.map((d): Field => [1, 'varint', d]),
    [2, 'varint', elemType],
    [8, 'bytes', str(name)],
    [9, 'bytes', raw],
  ]);
}

function singleNodeModel(
  op: string,
  inputs: string[],
  graphInput: Uint8Array,
  inits: Uint8Array[],
  output: Uint8Array,
): Uint8Array {
  const node = message([
    ...inputs.map((i): Field => [1, 'bytes', str(i)]),
    [2, 'bytes', str('y')],
    [4, 'bytes', str(op)],
  ]);
  const graph = message([
    [1, 'bytes', node],
    [2, 'bytes', str('g')],
    ...inits.map((t): Field => [5, 'bytes', t]),
    [11, 'bytes', graphInput],
    [12, 'bytes', output],
  ]);
  return message([
    [1, 'varint', 8], // ir_version
    [8, 'bytes', message([[2, 'varint', 13]])], // opset 13
    [7, 'bytes', graph],
  ]);
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** `y[M,N] int32 = MatMulInteger(a u8 [M,K], b s8 [K,N] constant, aZero, 0)`. */
export function matMulIntegerModel(m: number, k: number, n: number, b: Int8Array, aZero: number): Uint8Array {
  return singleNodeModel(
    'MatMulInteger',
    ['a', 'b', 'a_zero', 'b_zero'],
    valueInfo('a', OnnxType.uint8, [m, k]),
    [
      initializer('b', OnnxType.int8, [k, n], bytesOf(b)),
      initializer('a_zero', OnnxType.uint8, [], Uint8Array.of(aZero)),
      initializer('b_zero', OnnxType.int8, [], Uint8Array.of(0)),
    ],
    valueInfo('y', OnnxType.int32, [m, n]),
  );
}

/** `y[M,N] float = MatMul(a float [M,K], b float [K,N] constant)`. */
export function matMulFloatModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  return singleNodeModel(
    'MatMul',
    ['a', 'b'],
    valueInfo('a', OnnxType.float, [m, k]),
    [initializer('b', OnnxType.float, [k, n], bytesOf(b))],
    valueInfo('y', OnnxType.float, [m, n]),
  );
}

/** `y[N] = QuantizeLinear(x float [N], scale, zeroPoint)`, u8 output (zero point u8) or s8 (zero point s8). */
export function quantizeLinearModel(
  n: number,
  scale: number,
  zeroPoint: number,
  signed: boolean,
): Uint8Array {
  const q = signed ? OnnxType.int8 : OnnxType.uint8;
  const zero = signed ? new Uint8Array(Int8Array.of(zeroPoint).buffer) : Uint8Array.of(zeroPoint);
  return singleNodeModel(
    'QuantizeLinear',
    ['x', 'scale', 'zero'],
    valueInfo('x', OnnxType.float, [n]),
    [
      initializer('scale', OnnxType.float, [], bytesOf(Float32Array.of(scale))),
      initializer('zero', q, [], zero),
    ],
    valueInfo('y', q, [n]),
  );
}
