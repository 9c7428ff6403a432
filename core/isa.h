// The instruction sets adze's kernels are written for (the runtime's, and the projections' hot loops),
// detected at run time.
//
// Every kernel has a portable scalar reference; faster paths exist for AVX2 (with FMA) and for AVX-512
// (F, BW, VL, VNNI and VBMI2: vpdpbusd and vpexpandb). The best path the CPU has is used unless the environment
// variable ADZE_ISA forces a lower one (`scalar`, `avx2`, `avx512`), so that the tests run every path on any
// machine. Forcing a path the CPU lacks is an error naming the missing flags.
#pragma once

#include <string>
#include <vector>

namespace adze {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/// "scalar", "avx2", "avx512".
const char* to_string(Isa isa);
/// The best path this CPU (and its operating system) supports.
Isa detected_isa();
/// The path kernels use: ADZE_ISA when set (Error(kInvalidArgument) for an unknown name or a path this CPU
/// lacks, naming the missing flags), else detected_isa(). Read once per process.
Isa active_isa();
/// Every path this CPU can run, lowest first (what the tests iterate over).
std::vector<Isa> runnable_isas();
/// The CPU flags the paths depend on, as this CPU reports them ("avx2 fma avx512f ... amx-int8"), for
/// benchmark reports.
std::string cpu_flags();

/// What `isa` selects of one thing written per instruction set (a kernel table, the function that returns it):
/// the dispatch every family of kernels shares, `by_isa(isa, scalar_table, avx2_table, avx512_table)()`.
template <typename T>
T by_isa(Isa isa, T scalar, T avx2, T avx512) {
  return isa == Isa::kAvx512 ? avx512 : isa == Isa::kAvx2 ? avx2 : scalar;
}

}  // namespace adze
