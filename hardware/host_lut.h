// The measured cost table of `host` (cost model "measured"): the packed runtime's kernel of an encoded layer
// (packed_matmul: the integer kernels on activations quantized per row; float weights: one fp32 GEMM) timed on
// this machine over
// a grid of weight sizes C·K × tokens (rows of the input: batch × output positions) for weight configs of 2, 3,
// 4 and 8 bits, dense and 2:4, and fp32. A layer is priced by interpolating the grid: log time bilinear in
// (log C·K, log tokens), extrapolated along the edge slopes, and linearly in bits between measured widths. A
// convolution is priced as its im2col GEMM (the same MACs).
//
// Measured on first use and cached at ~/.cache/adze/targets/host-lut.json; adze target calibrate host measures
// it again (with the host target, about 5 s on a 2-core machine).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/encoding.h"
#include "runtime/packed_layer.h"

namespace adze {

struct HostLut {
  std::vector<double> elements;  ///< grid of C·K, ascending
  std::vector<double> tokens;    ///< grid of input rows, ascending
  /// config key ("w4", "w4 2:4", "fp32") → seconds, row-major [elements × tokens]
  std::map<std::string, std::vector<double>> seconds;
  int threads = 0;  ///< libtorch threads it was measured with
  std::string isa;  ///< the runtime's instruction set it was measured on (core/isa.h)
  /// Seconds of one layer call with `elements` weights and `tokens` input rows under `config`.
  double lookup(const LayerConfig& config, double elements, double tokens) const;
};

/// `weight` (of `layer`) projected by `config` and packed as a packed file holds it; the view reads `stored`,
/// which must outlive it.
std::unique_ptr<packed::LayerView> packed_layer_view(const at::Tensor& weight, const Layer& layer,
                                                     const LayerConfig& config, packed::PackedLayer& stored);

/// Seconds of the runtime's kernel for a [C, K] weight under `config` applied to `tokens` rows (the best of
/// `runs` timings).
double time_layer_kernel(int64_t channels, int64_t reduction, int64_t tokens, const LayerConfig& config, int runs);

HostLut measure_host_lut(bool progress);
/// The cached table, measured and cached when there is none, it is unreadable, or it was measured with another
/// number of threads or on another instruction set.
HostLut host_lut();
/// measure_host_lut, cached.
HostLut measure_and_cache_host_lut(bool progress);

nlohmann::json to_json(const HostLut& lut);
/// Error(kInvalidConfig) naming `where` for a malformed table.
HostLut host_lut_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace adze
