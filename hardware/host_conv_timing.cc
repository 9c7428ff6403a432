#include "hardware/host_conv_timing.h"

#include <torch/torch.h>

#include <cmath>

#include "hardware/host_calibration.h"
#include "hardware/host_lut.h"
#include "runtime/buffer_pool.h"
#include "runtime/packed_ops.h"

namespace adze {
namespace {

// √n when n is a whole square, else 0.
int64_t square_side(int64_t n) {
  const auto s = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return s * s == n ? s : 0;
}

}  // namespace

std::optional<ConvGeometry> conv_geometry(const Layer& layer) {
  if (layer.kind != LayerKind::kConv2d || layer.groups != 1 || layer.uses != 1 || layer.weight_shape.size() != 4 ||
      layer.weight_shape[2] != layer.weight_shape[3] || layer.in_channels < 1 || layer.out_channels < 1 ||
      layer.input_elements % layer.in_channels != 0 || layer.output_elements % layer.out_channels != 0)
    return std::nullopt;
  ConvGeometry g;
  g.in_channels = layer.in_channels;
  g.kernel = layer.weight_shape[2];
  g.side = square_side(layer.input_elements / layer.in_channels);
  g.out_side = square_side(layer.output_elements / layer.out_channels);
  if (g.side < 1 || g.out_side < 1) return std::nullopt;
  for (g.stride = 1; g.stride <= g.kernel + g.side; ++g.stride) {
    // The padding nearest (k − 1)/2 that gives the output side at this stride.
    for (int64_t d = 0; d <= g.kernel; ++d)
      for (const int64_t p : {(g.kernel - 1) / 2 - d, (g.kernel - 1) / 2 + d})
        if (p >= 0 && g.side + 2 * p >= g.kernel && (g.side + 2 * p - g.kernel) / g.stride + 1 == g.out_side) {
          g.padding = p;
          return g;
        }
  }
  return std::nullopt;
}

double time_conv_layer(const Layer& layer, const ConvGeometry& g, const LayerConfig& config, int64_t batch, int runs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const at::Tensor w = torch::randn(c10::IntArrayRef(layer.weight_shape.data(), layer.weight_shape.size()));
  // Channels last, as the runtime hands one convolution's output to the next (a model's input layer reads NCHW,
  // a transpose of its few input channels more).
  const at::Tensor x = torch::randn({batch, g.in_channels, g.side, g.side}).contiguous(at::MemoryFormat::ChannelsLast);
  const std::vector<int64_t> stride{g.stride, g.stride}, padding{g.padding, g.padding}, dilation{1, 1};
  std::function<void()> call;
  packed::PackedLayer stored;
  std::unique_ptr<packed::LayerView> view;
  at::Tensor decoded;
  const std::shared_ptr<runtime::BufferPool> pool = runtime::BufferPool::make();
  const packed::ActivationQuant act{0.05f, 128};  // calibrated 8-bit activations: any scale times the same
  if (config.quantized()) view = packed_layer_view(w, layer, config, stored);
  if (view && view->integer_weights()) {
    // As in a model: outputs from a buffer pool, left channels last for the next convolution.
    const packed::ActivationQuant* calibrated = config.act_bits == 8 ? &act : nullptr;
    call = [&, calibrated] {  // by value: `calibrated` ends with this block, the call comes after it
      const runtime::PoolScope scope(pool.get());
      (void)packed::packed_conv2d(*view, x, at::Tensor(), stride, padding, dilation, calibrated, true, {}, false);
    };
  } else {  // the runtime decodes such weights at open and convolves in fp32
    decoded = view ? packed::decoded_weight(*view) : w;
    call = [&] { (void)torch::conv2d(x, decoded, {}, stride, padding, dilation); };
  }
  call();  // warm the caches, the buffers and the panels
  return best_seconds(call, runs);
}

}  // namespace adze
