// Runtime CPU dispatch: CPUID + XGETBV (is the feature there, and does the OS save its state?),
// and the Linux permission request for AMX tile data.
#include "common.h"

#if QBNN_X86
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace qbnn {

namespace {

#if QBNN_X86
uint64_t xgetbv0() {
  uint32_t eax = 0;
  uint32_t edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool requestAmxPermission(const char** note) {
#if defined(__linux__)
  constexpr long kArchGetXcompPerm = 0x1022;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    *note = "arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) refused by the kernel";
    return false;
  }
  unsigned long bitmask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0 || !(bitmask & (1UL << kXfeatureXtiledata))) {
    *note = "XTILEDATA permission not granted";
    return false;
  }
  *note = "AMX tile data permission granted";
  return true;
#else
  *note = "AMX needs Linux arch_prctl permission; not attempted on this OS";
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const uint32_t maxLeaf = a;
  __get_cpuid(1, &a, &b, &c, &d);
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  const bool fma = (c >> 12) & 1;
  if (!osxsave || !avx || maxLeaf < 7) {
    f.amxNote = "no AVX";
    return f;
  }
  const uint64_t xcr0 = xgetbv0();
  const bool ymmState = (xcr0 & 0x6) == 0x6;
  const bool zmmState = (xcr0 & 0xe6) == 0xe6;
  const bool tileState = (xcr0 & (3ULL << 17)) == (3ULL << 17);
  __cpuid_count(7, 0, a, b, c, d);
  const uint32_t ebx7 = b, ecx7 = c, edx7 = d, maxSub7 = a;
  const bool avx2 = (ebx7 >> 5) & 1;
  const bool bmi2 = (ebx7 >> 8) & 1;
  const bool avx512f = (ebx7 >> 16) & 1;
  const bool avx512dq = (ebx7 >> 17) & 1;
  const bool avx512bw = (ebx7 >> 30) & 1;
  const bool avx512vl = (ebx7 >> 31) & 1;
  const bool avx512vnni = (ecx7 >> 11) & 1;
  const bool avx512vbmi = (ecx7 >> 1) & 1;
  const bool amxTile = (edx7 >> 24) & 1;
  const bool amxInt8 = (edx7 >> 25) & 1;
  bool avxvnni = false;
  if (maxSub7 >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    avxvnni = (a >> 4) & 1;
  }
  f.avx2 = ymmState && avx2 && fma && bmi2;
  f.avxvnni = f.avx2 && avxvnni;
  f.avx512vnni = f.avx2 && zmmState && avx512f && avx512dq && avx512bw && avx512vl && avx512vnni;
  f.avx512vbmi = f.avx512vnni && avx512vbmi;
  f.amxHardware = amxTile && amxInt8;
  if (!f.amxHardware) {
    f.amxNote = "CPU has no AMX-TILE/AMX-INT8";
  } else if (!tileState) {
    f.amxNote = "OS does not enable AMX tile state in XCR0";
  } else if (!f.avx512vnni) {
    f.amxNote = "AMX present but AVX-512 missing; AMX path disabled";
  } else {
    f.amx = requestAmxPermission(&f.amxNote);
  }
  return f;
}
#else
CpuFeatures detect() {
  CpuFeatures f;
  f.amxNote = "not an x86-64 CPU";
  return f;
}
#endif

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace qbnn
