import { describe, expect, test } from 'vitest';
import { philox4x32, philoxFill } from '../src/rng/philox.js';

const hex = (a: Uint32Array) => [...a].map((x) => x.toString(16).padStart(8, '0'));

describe('philox4x32-10', () => {
  // Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds).
  test('matches the Random123 known answers', () => {
    const o = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, o);
    expect(hex(o)).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const f = 0xffffffff;
    philox4x32(f, f, f, f, f, f, o);
    expect(hex(o)).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0xa4093822, 0x299f31d0, 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, o);
    expect(hex(o)).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  test('a fill is the concatenation of its blocks, whatever the split', () => {
    const whole = new Uint32Array(37);
    philoxFill(7, 9, 100, whole);
    const a = new Uint32Array(16);
    const b = new Uint32Array(21);
    philoxFill(7, 9, 100, a);
    philoxFill(7, 9, 104, b);
    expect([...a, ...b]).toEqual([...whole]);
  });
});
