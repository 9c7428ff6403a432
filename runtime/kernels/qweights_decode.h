// Reading packed integer weights (qgemm.h's layout) back, one row at a time: for the runtime's fp32 path,
// embedding lookups, and giving back the Encoding a packed file holds. The bit planes are unpacked by the row
// kernels of an instruction set (the same values on each), the rest is plain code.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/kernels/qgemm.h"

namespace adze {
namespace runtime {

/// Row `row` of w in reduction order: values[j] = u − offset (0 where nothing is kept), kept[j] = 1 where a
/// weight is kept. A kPairs row's fillers sit at positions past k only (pack_qweights_storable()).
void decode_row(const QWeights& w, int64_t row, int8_t* values, uint8_t* kept, Isa isa = active_isa());

/// Why these packed weights cannot be stored and read back exactly ("" when they can): kPairs fillers inside k
/// (a group of four cut short by k) are indistinguishable from kept weights that decode to 0.
std::string qweights_unstorable(const QWeightLayout& layout);

/// Checks what a file's bytes could get wrong in a layout read from it: a mask row that keeps other than
/// `kept` positions, pair positions that repeat within a group. Returns "" or what is wrong.
std::string qweights_corruption(const QWeights& w);

}  // namespace runtime
}  // namespace adze
