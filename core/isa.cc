#include "core/isa.h"

#include <cpuid.h>

#include <cstdlib>

#include "core/error.h"

namespace adze {
namespace {

struct Flag {
  const char* name;
  bool present;
};

// __builtin_cpu_supports also checks that the operating system saves the wider registers (XCR0).
std::vector<Flag> avx2_flags() {
  __builtin_cpu_init();
  return {{"avx2", __builtin_cpu_supports("avx2") != 0}, {"fma", __builtin_cpu_supports("fma") != 0}};
}

// A bit of CPUID leaf 7's EDX, for flags that are only reported (no kernel dispatches on them) and that
// __builtin_cpu_supports does not know in every compiler (clang 14): 23 AVX512-FP16, 25 AMX-INT8.
bool cpuid7_edx_bit(int bit) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ((d >> bit) & 1u) != 0;
}

std::vector<Flag> avx512_flags() {
  __builtin_cpu_init();
  return {{"avx512f", __builtin_cpu_supports("avx512f") != 0},
          {"avx512bw", __builtin_cpu_supports("avx512bw") != 0},
          {"avx512vl", __builtin_cpu_supports("avx512vl") != 0},
          {"avx512vnni", __builtin_cpu_supports("avx512vnni") != 0},
          {"avx512vbmi2", __builtin_cpu_supports("avx512vbmi2") != 0}};
}

std::string missing(const std::vector<Flag>& flags) {
  std::string out;
  for (const Flag& f : flags)
    if (!f.present) out += (out.empty() ? "" : " ") + std::string(f.name);
  return out;
}

bool supports(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return missing(avx2_flags()).empty();
    case Isa::kAvx512:
      return missing(avx2_flags()).empty() && missing(avx512_flags()).empty();
  }
  return false;
}

Isa choose() {
  const char* forced = std::getenv("ADZE_ISA");
  if (!forced || !*forced) return detected_isa();
  const std::string name = forced;
  Isa isa;
  if (name == "scalar")
    isa = Isa::kScalar;
  else if (name == "avx2")
    isa = Isa::kAvx2;
  else if (name == "avx512")
    isa = Isa::kAvx512;
  else
    throw Error(ErrorKind::kInvalidArgument, "ADZE_ISA '" + name + "' is not one of scalar, avx2, avx512");
  if (!supports(isa)) {
    std::vector<Flag> flags = avx2_flags();
    if (isa == Isa::kAvx512)
      for (const Flag& f : avx512_flags()) flags.push_back(f);
    throw Error(ErrorKind::kUnsupported, "ADZE_ISA=" + name + ": this CPU lacks " + missing(flags));
  }
  return isa;
}

}  // namespace

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  if (supports(Isa::kAvx512)) return Isa::kAvx512;
  if (supports(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa active_isa() {
  static const Isa isa = choose();
  return isa;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (supports(isa)) out.push_back(isa);
  return out;
}

std::string cpu_flags() {
  std::vector<Flag> flags = avx2_flags();
  for (const Flag& f : avx512_flags()) flags.push_back(f);
  flags.push_back({"avx512fp16", cpuid7_edx_bit(23)});
  flags.push_back({"amx-int8", cpuid7_edx_bit(25)});
  std::string out;
  for (const Flag& f : flags)
    if (f.present) out += (out.empty() ? "" : " ") + std::string(f.name);
  return out.empty() ? "none of avx2/avx512" : out;
}

}  // namespace adze
