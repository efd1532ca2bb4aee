// Execution plans: a whole quantised model's Monte Carlo forward in one call (see plan.cc and
// packages/core/src/kernels/plan.ts for the description it is built from).
#pragma once

#include <napi.h>

#include "common.h"

namespace qbnn {

// The packed weights behind a native handle (addon.cc); throws a TypeError naming `name`.
const Packed& packedFromHandle(Napi::Env env, Napi::Value v, const char* name);

// { create(desc), run(plan, x, batch, samples, keys, scalars, out), dispose(plan) }
Napi::Object makePlanExports(Napi::Env env);

}  // namespace qbnn
