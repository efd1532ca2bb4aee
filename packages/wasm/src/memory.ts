import { type KernelModule, memoryError } from './module.js';

const PAGE = 65536;
/** The modules' maximum memory (wasm-ld --max-memory): 2 GiB. */
const MAX_BYTES = 2 ** 31;
/** Bytes of slack after each region: the microkernels read up to 3 bytes past an activation row. */
const SLACK = 16;

/** Something kept in a module's memory between calls: one sampled weight pack. */
export interface Resident {
  /** Copies the bytes out to JavaScript memory before the region is reused. */
  evict(): void;
}

/**
 * Per-call scratch memory of a kernel module. Every call lays its buffers out from the heap base
 * (so nothing leaks and nothing needs freeing), growing the memory when a call needs more. One
 * region may stay resident between calls: the last sampled weight pack, which the next GEMM
 * reads in place (a Monte Carlo sample's weights are used once, so they are never copied out
 * unless kept past the next sampling). Growth replaces the memory's ArrayBuffer, so views are
 * taken after `layout` and never kept across calls.
 */
export class Scratch {
  private resident: { owner: Resident; end: number } | undefined;

  constructor(readonly mod: KernelModule) {}

  /**
   * Keeps `bytes` resident at the heap base for the owner `make(offset)` returns, evicting the
   * previous resident region first. Call `layout` after it for the call's other buffers.
   */
  reserve<T extends Resident>(bytes: number, make: (offset: number) => T): T {
    this.resident?.owner.evict();
    this.resident = undefined;
    const offset = this.layout([bytes])[0];
    const owner = make(offset);
    this.resident = { owner, end: offset + bytes + SLACK };
    return owner;
  }

  /** Forgets the resident region of `owner` (its bytes were copied out or are no longer needed). */
  release(owner: Resident): void {
    if (this.resident?.owner === owner) this.resident = undefined;
  }

  /** Offsets of regions of the given byte sizes (16-byte aligned, with slack after each), after any resident region. */
  layout(sizes: readonly number[]): number[] {
    const offsets: number[] = [];
    let end = this.resident?.end ?? this.mod.heapBase;
    for (const size of sizes) {
      end = Math.ceil(end / 16) * 16;
      offsets.push(end);
      end += size + SLACK;
    }
    this.ensure(end);
    return offsets;
  }

  private ensure(bytes: number): void {
    if (bytes > MAX_BYTES) throw memoryError(bytes);
    const memory = this.mod.exports.memory;
    const have = memory.buffer.byteLength;
    if (bytes <= have) return;
    try {
      memory.grow(Math.ceil((bytes - have) / PAGE));
    } catch {
      throw memoryError(bytes);
    }
  }

  get buffer(): ArrayBuffer {
    return this.mod.exports.memory.buffer as ArrayBuffer;
  }

  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer, offset, length);
  }

  i8(offset: number, length: number): Int8Array {
    return new Int8Array(this.buffer, offset, length);
  }

  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.buffer, offset, length);
  }

  f64(offset: number, length: number): Float64Array {
    return new Float64Array(this.buffer, offset, length);
  }

  /** Copies a typed array into memory at `offset`. */
  put(offset: number, src: Int8Array | Uint8Array | Int32Array | Float64Array | Uint32Array): void {
    new Uint8Array(this.buffer, offset, src.byteLength).set(
      new Uint8Array(src.buffer, src.byteOffset, src.byteLength),
    );
  }

  /** Copies `length` elements of `dst`'s type from `offset` into `dst` at `dstOffset`. */
  get(
    offset: number,
    dst: Uint8Array | Int8Array | Int32Array | Float32Array,
    dstOffset = 0,
    length?: number,
  ): void {
    const n = length ?? dst.length - dstOffset;
    const bytes = n * dst.BYTES_PER_ELEMENT;
    new Uint8Array(dst.buffer, dst.byteOffset + dstOffset * dst.BYTES_PER_ELEMENT, bytes).set(
      new Uint8Array(this.buffer, offset, bytes),
    );
  }
}
