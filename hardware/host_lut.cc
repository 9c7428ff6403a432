#include "hardware/host_lut.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/isa.h"
#include "core/progress.h"
#include "hardware/host_calibration.h"
#include "runtime/packed_layer.h"
#include "runtime/packed_model.h"
#include "runtime/packed_ops.h"

namespace adze {

namespace {

constexpr int kMeasuredBits[] = {2, 3, 4, 8};

std::string key_of(int bits, bool nm) {
  if (bits >= 32) return "fp32";
  return "w" + std::to_string(bits) + (nm ? " 2:4" : "");
}

LayerConfig config_of(int bits, bool nm) {
  LayerConfig c;
  c.weight_bits = bits;
  if (nm) c.nm = NMPattern::parse("2:4");
  return c;
}

std::string lut_path() { return cache_dir("targets") + "/host-lut.json"; }

// The position of v in an ascending grid as (lower index, fraction), in log space, extrapolating past the ends.
std::pair<std::size_t, double> locate(const std::vector<double>& grid, double v) {
  std::size_t i = 0;
  while (i + 2 < grid.size() && v > grid[i + 1]) ++i;
  return {i, (std::log(v) - std::log(grid[i])) / (std::log(grid[i + 1]) - std::log(grid[i]))};
}

}  // namespace

std::unique_ptr<packed::LayerView> packed_layer_view(const at::Tensor& weight, const Layer& layer,
                                                     const LayerConfig& config, packed::PackedLayer& stored) {
  stored = packed::pack_layer(layer.weight, project(weight, layer, config));
  std::map<std::string, packed::TensorSpan> spans;
  for (const auto& t : stored.tensors)
    spans[t.name] = {t.dtype, t.shape, reinterpret_cast<const uint8_t*>(t.bytes.data()),
                     static_cast<int64_t>(t.bytes.size())};
  return std::make_unique<packed::LayerView>(nlohmann::json::parse(stored.header.dump()), spans, "host timing");
}

double time_layer_kernel(int64_t channels, int64_t reduction, int64_t tokens, const LayerConfig& config, int runs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const at::Tensor w = torch::randn({channels, reduction}), x = torch::randn({tokens, reduction});
  std::function<void()> call;
  packed::PackedLayer stored;
  std::unique_ptr<packed::LayerView> view;
  if (!config.quantized()) {
    call = [&] { (void)torch::mm(x, w.t()); };
  } else {
    Layer layer;
    layer.name = layer.weight = "w";
    layer.weight_shape = {channels, reduction};
    layer.params = channels * reduction;
    layer.in_channels = layer.reduction_size = reduction;
    layer.out_channels = channels;
    view = packed_layer_view(w, layer, config, stored);
    // As the runtime runs weight-only layers: the integer kernels on activations quantized per row, where they
    // take the config (the decoded fp32 path elsewhere).
    call = [&] { (void)packed::packed_matmul(*view, x, at::Tensor(), nullptr, true); };
  }
  call();  // warm the caches and the allocator
  return best_seconds(call, runs);
}

double HostLut::lookup(const LayerConfig& config, double e, double t) const {
  auto at_key = [&](const std::string& key) {
    const auto it = seconds.find(key);
    if (it == seconds.end()) throw Error(ErrorKind::kUnsupported, "the host cost table has no entry for " + key);
    const auto [i, fi] = locate(elements, std::max(e, 1.0));
    const auto [j, fj] = locate(tokens, std::max(t, 1.0));
    auto v = [&](std::size_t a, std::size_t b) { return std::log(it->second[a * tokens.size() + b]); };
    const double low = v(i, j) + fj * (v(i, j + 1) - v(i, j)),
                 high = v(i + 1, j) + fj * (v(i + 1, j + 1) - v(i + 1, j));
    return std::exp(low + fi * (high - low));
  };
  if (!config.quantized() || config.weight_bits >= 16) return at_key("fp32");
  const bool nm = config.nm.enabled();
  const int bits = config.weight_bits;
  const int* upper = std::lower_bound(std::begin(kMeasuredBits), std::end(kMeasuredBits), bits);
  if (upper == std::end(kMeasuredBits)) return at_key(key_of(8, nm));
  if (*upper == bits || upper == std::begin(kMeasuredBits)) return at_key(key_of(*upper, nm));
  const int lower = *(upper - 1);
  const double f = static_cast<double>(bits - lower) / static_cast<double>(*upper - lower);
  return (1 - f) * at_key(key_of(lower, nm)) + f * at_key(key_of(*upper, nm));
}

HostLut measure_host_lut(bool progress) {
  HostLut lut;
  lut.threads = at::get_num_threads();
  lut.isa = to_string(active_isa());
  for (int p = 12; p <= 20; p += 2) lut.elements.push_back(std::ldexp(1.0, p));
  lut.tokens = {1, 8, 64, 512};
  std::vector<std::pair<int, bool>> configs = {{32, false}};
  for (int bits : kMeasuredBits)
    for (bool nm : {false, true}) configs.emplace_back(bits, nm);
  ProgressBar bar("host cost table", static_cast<int64_t>(configs.size() * lut.elements.size()), progress);
  int64_t done = 0;
  for (const auto& [bits, nm] : configs) {
    auto& row = lut.seconds[key_of(bits, nm)];
    for (double e : lut.elements) {
      const auto c = static_cast<int64_t>(std::llround(std::sqrt(e)));
      for (double t : lut.tokens)
        row.push_back(time_layer_kernel(c, c, static_cast<int64_t>(t), config_of(bits, nm), e * t > 1e8 ? 2 : 5));
      bar.update(++done);
    }
  }
  bar.finish();
  return lut;
}

nlohmann::json to_json(const HostLut& lut) {
  return {{"format", "adze.host-lut.v3"},
          {"threads", lut.threads},
          {"isa", lut.isa},
          {"kernel",
           "packed_matmul on the integer kernels, activations quantized per row (fp32: torch::mm), best of "
           "several runs"},
          {"elements", lut.elements},
          {"tokens", lut.tokens},
          {"seconds", lut.seconds}};
}

HostLut host_lut_from_json(const nlohmann::json& j, const std::string& where) {
  HostLut lut;
  try {
    if (j.at("format") != "adze.host-lut.v3") throw Error(ErrorKind::kInvalidConfig, "unknown format");
    lut.threads = j.at("threads").get<int>();
    lut.isa = j.at("isa").get<std::string>();
    lut.elements = j.at("elements").get<std::vector<double>>();
    lut.tokens = j.at("tokens").get<std::vector<double>>();
    lut.seconds = j.at("seconds").get<std::map<std::string, std::vector<double>>>();
    if (lut.elements.size() < 2 || lut.tokens.size() < 2) throw Error(ErrorKind::kInvalidConfig, "grid too small");
    for (const auto& [key, row] : lut.seconds)
      if (row.size() != lut.elements.size() * lut.tokens.size() ||
          std::any_of(row.begin(), row.end(), [](double v) { return !(v > 0) || !std::isfinite(v); }))
        throw Error(ErrorKind::kInvalidConfig, "entry '" + key + "' is not a full grid of positive seconds");
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidConfig, "host cost table '" + where + "' is malformed: " + first_line_of(e));
  }
  return lut;
}

HostLut measure_and_cache_host_lut(bool progress) {
  HostLut lut = measure_host_lut(progress);
  const std::string path = lut_path();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomically(path, to_json(lut).dump(1) + "\n");
  return lut;
}

HostLut host_lut() {
  const std::string path = lut_path();
  if (std::filesystem::exists(path)) {
    try {
      HostLut lut = host_lut_from_json(nlohmann::json::parse(read_file_text(path)), path);
      if (lut.threads == at::get_num_threads() && lut.isa == to_string(active_isa())) return lut;
    } catch (const std::exception&) {
      // An unreadable or outdated table is measured again below.
    }
  }
  return measure_and_cache_host_lut(false);
}

}  // namespace adze
