// Weight schemes (quantizers), one row each: what plan parsing, projection, sizes, contracts, the packed layout,
// the runtime's integer kernels, the ONNX exporter and fine-tuning need to know about a scheme, and the scheme's
// own code (its projection, decoder, range and element decoder), in one table (as ggml keeps its type traits).
// Each built-in row is a function in compress/schemes/ and one ADZE_SCHEME line of core/builtins.def.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace adze {

struct LayerConfig;  // compress/encoding.h

/// Stored ids (encodings, the packed format's scheme names): a scheme's id is never reused.
enum class Quantizer : uint8_t { kUniform = 0, kPow2 = 1 };

/// Rows [R, K] of a quantization grid as a scheme codes them: integer codes [R, K] and per-row scale [R]
/// (float32) and zero point [R] (int32; zeros for schemes without zero points).
struct GridRows {
  at::Tensor codes, scale, zero_point;
};

struct SchemeTraits {
  Quantizer id;
  const char* name;           ///< the plan's "quantizer" value
  const char* packed_scheme;  ///< the packed format's "scheme" (runtime/FORMAT.md), versioned
  const char* summary;
  bool zero_points;  ///< asymmetric grids exist: a zero point per row, stored at the code width
  bool per_group;    ///< per-group scales are supported (else per tensor or per channel)
  bool affine;       ///< value = (code − zero point) · scale: integer kernels and ONNX integer forms take
                     ///< the codes as they are, and scales may be given or learned (LSQ)
  /// The smallest and largest code of a `bits`-bit grid (`symmetric` matters only to schemes with zero points).
  int64_t (*min_code)(int bits, bool symmetric);
  int64_t (*max_code)(int bits, bool symmetric);
  /// Projects float rows [R, K] onto the grid of `config` (bits, symmetry, scale method). `keep` (bool [R, K],
  /// optional) marks the weights that count: the others get the code of zero. `given` scales, when defined
  /// (affine schemes only), are used as they are.
  GridRows (*project)(const at::Tensor& rows, const LayerConfig& config, const at::Tensor& keep, const GridRows& given);
  /// The float rows [R, K] the codes stand for.
  at::Tensor (*decode)(const GridRows& rows, const LayerConfig& config);
  /// The lowest and highest value each row's grid holds, [R, 1] each: a weight inside keeps its gradient
  /// under straight-through fine-tuning.
  std::pair<at::Tensor, at::Tensor> (*range)(const GridRows& rows, const LayerConfig& config);
  /// One code's value (the packed runtime's row decoder); `code` is within [min_code, max_code].
  float (*value)(int64_t code, float scale, float zero_point, int bits);
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
