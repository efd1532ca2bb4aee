{
  "variables": {
    "qbnn_sanitize%": "<!(node -p \"process.env.QBNN_SANITIZE === '1' ? 1 : 0\")",
    "qbnn_portable%": "<!(node -p \"process.env.QBNN_PORTABLE === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "qbnn_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/driver.cc",
        "native/src/plan.cc",
        "native/src/cpu.cc",
        "native/src/pool.cc",
        "native/src/rng.cc",
        "native/src/rng_avx512.cc",
        "native/src/unpack.cc",
        "native/src/gemm_scalar.cc",
        "native/src/gemm_avx2.cc",
        "native/src/gemm_avx512.cc",
        "native/src/conv_direct.cc",
        "native/src/qpool.cc",
        "native/src/amx_emu.cc",
        "native/src/amx_hw.cc",
        "native/src/fp32/binding.cc",
        "native/src/fp32/sgemm.cc",
        "native/src/fp32/ukernel_avx512.cc",
        "native/src/fp32/conv.cc",
        "native/src/fp32/conv_nchw.cc",
        "native/src/fp32/relu_pool_grad_taps.cc",
        "native/src/fp32/reduce.cc",
        "native/src/fp32/gather.cc",
        "native/src/fp32/locscale.cc",
        "native/src/fp32/pooling.cc",
        "native/src/fp32/transpose.cc",
        "native/src/fp32/unary.cc",
        "native/src/fp32/unary_avx512.cc",
        "native/src/fp32/elementwise.cc",
        "native/src/fp32/normal.cc",
        "native/src/fp32/normal_avx512.cc",
        "native/src/fp32/adam.cc",
        "native/src/fp32/gaussian_kl.cc",
        "native/src/fp32/gaussian_kl_avx512.cc",
        "native/src/fp32/squared_distance.cc",
        "native/src/fp32/dropout.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-ffp-contract=off", "-fno-strict-aliasing"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["qbnn_portable==1", { "defines": ["QBNN_PORTABLE"] }],
        # With the sanitizers GCC 12 reports ~2,000 maybe-uninitialized false positives from the
        # deliberately undefined vectors of its own AVX-512 headers (__m128i __Y = __Y), which
        # buried every other warning of the variant build.
        ["qbnn_sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-g", "-Wno-maybe-uninitialized"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
