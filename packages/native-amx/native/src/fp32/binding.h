// The fp32 kernels' Node-API surface: an object of functions, set as `fp32` on the addon.
#pragma once

#include <napi.h>

namespace qbnn {
namespace fp32 {

Napi::Object makeExports(Napi::Env env);

}  // namespace fp32
}  // namespace qbnn
