// A 2-D convolution of a model timed as the packed runtime runs it, for the "measured" cost model of `host`: the
// input quantized (calibrated when the config quantizes activations, else one dynamic range) and its patches
// gathered, then the integer kernels (packed_conv2d); ATen's convolution of the decoded fp32 weight where the
// config has no integer kernel. The cost table (host_lut.h) prices a convolution as the GEMM of its patches and
// leaves the quantizing and gathering out: fmnist-cnn's two convolutions took 17.4 and 23.9 µs in the runtime,
// a third more than the table's GEMMs.
#pragma once

#include <cstdint>
#include <optional>

#include "compress/encoding.h"
#include "model/layer_table.h"

namespace adze {

/// The geometry of a square 2-D convolution of groups 1, from what the layer table records: H = W =
/// √(input elements / C_in), the output side √(output elements / C_out), and the smallest stride (with the
/// padding nearest (k − 1)/2) that maps one to the other. nullopt for any other layer.
struct ConvGeometry {
  int64_t in_channels = 0, side = 0, kernel = 0, stride = 1, padding = 0, out_side = 0;
};
std::optional<ConvGeometry> conv_geometry(const Layer& layer);

/// Seconds of `layer` (conv_geometry() must give its geometry) under `config` on `batch` samples: the best of
/// `runs` timings after one warm-up call, on random weights projected by `config`.
double time_conv_layer(const Layer& layer, const ConvGeometry& g, const LayerConfig& config, int64_t batch, int runs);

}  // namespace adze
