// Weight schemes (quantizers), one row each: what plan parsing, projection, sizes, contracts, the packed layout,
// the runtime's integer kernels, the ONNX exporter and fine-tuning need to know about a scheme, in one table
// (as ggml keeps its type traits). A new scheme is a row here plus its projection and decoder
// (compress/encoding.cc) and, where it has them, its kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

/// Stored ids (encodings, the packed format's scheme names): a scheme's id is never reused.
enum class Quantizer : uint8_t { kUniform = 0, kPow2 = 1 };

struct SchemeTraits {
  Quantizer id;
  const char* name;           ///< the plan's "quantizer" value
  const char* packed_scheme;  ///< the packed format's "scheme" (runtime/FORMAT.md), versioned
  const char* summary;
  bool zero_points;  ///< asymmetric grids exist: a zero point per row, stored at the code width
  bool per_group;    ///< per-group scales are supported (else per tensor or per channel)
  bool affine;       ///< value = (code − zero point) · scale: integer kernels and ONNX integer forms take
                     ///< the codes as they are, and scales may be given or learned (LSQ)
  /// The smallest code of a `bits`-bit grid (`symmetric` matters only to schemes with zero points).
  int64_t (*min_code)(int bits, bool symmetric);
};

/// Every scheme, in id order.
const std::vector<SchemeTraits>& schemes();
/// The row of `q`.
const SchemeTraits& traits_of(Quantizer q);
/// The scheme a plan names ("uniform", "pow2"); nullptr when none has that name.
const SchemeTraits* scheme_named(const std::string& name);
/// "uniform or pow2": the names, for messages.
std::string scheme_names();

}  // namespace adze
