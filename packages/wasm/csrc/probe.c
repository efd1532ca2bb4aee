// Only in the relaxed-SIMD build: the engine's i32x4.relaxed_dot_i8x16_i7x16_add_s on given
// vectors, so src/module.ts can check at load that it computes unsigned bytes exactly.
#include "common.h"

EXPORT("qbnn_probe_dot")
void qbnn_probe_dot(const int8_t* w, const uint8_t* a, const int32_t* acc, int32_t* out) {
  const v128_t r = __builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4(
      (__i8x16)wasm_v128_load(w), (__i8x16)wasm_v128_load(a), (__i32x4)wasm_v128_load(acc));
  wasm_v128_store(out, r);
}
