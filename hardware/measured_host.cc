// The "measured" cost model: host only. Latency from the measured cost table (host_lut.h), for a layer as the
// GEMM it runs (C·K weights, batch × output positions rows; a square 2-D convolution of groups 1 instead timed
// whole as the runtime runs it, input quantization and patches included (host_conv_timing.h), once per shape,
// config and batch on this machine (host_timings.h); an embedding, which gathers rows instead, keeps the roofline's
// latency; a lowrank layer, which the packed runtime runs as its two factors, the sum of theirs; a Monarch layer of b
// blocks, which it runs as b products per factor, each a block's rows, the sum of those 2·b; a SmartDeal layer,
// composed at open, as the dense fp32 layer); bytes, energy and fit as the roofline computes them, since energy cannot
// be measured here.
#include "compress/decompose.h"
#include "compress/plan.h"
#include "core/error.h"
#include "hardware/cost_model.h"
#include "hardware/host_conv_timing.h"
#include "hardware/host_lut.h"
#include "hardware/host_timings.h"

namespace adze {

namespace {

// A config in a key: its JSON, every field.
std::string config_key(const LayerConfig& c) { return to_json(c).dump(); }

class MeasuredHost : public CostModel {
 public:
  LayerCost layer(const Target& target, const Layer& layer, const LayerConfig& config, int64_t batch) const override {
    if (target.name != "host")
      throw Error(ErrorKind::kInvalidArgument,
                  "the measured cost model times this machine: use it with --target host, "
                  "not '" +
                      target.name + "'");
    LayerCost c = roofline_->layer(target, layer, config, batch);
    if (layer.kind == LayerKind::kEmbedding || layer.params == 0) return c;
    const double tokens =
        static_cast<double>(batch) * static_cast<double>(layer.macs) / static_cast<double>(layer.params);
    if (const auto g = conv_geometry(layer); g && !config.decomposed()) {
      const std::string key = "conv " + std::to_string(layer.out_channels) + "x" + std::to_string(g->in_channels) +
                              "x" + std::to_string(g->kernel) + " side " + std::to_string(g->side) + " stride " +
                              std::to_string(g->stride) + " pad " + std::to_string(g->padding) + " batch " +
                              std::to_string(batch) + " " + config_key(config);
      c.latency_s = cached_host_seconds(key, [&] { return time_conv_layer(layer, *g, config, batch, 9); });
      return c;
    }
    if (!lut_) lut_ = std::make_unique<HostLut>(host_lut());
    if (!config.decomposed() || config.decompose == Decomposition::kSmartDeal) {
      // SmartDeal's weight is composed once at open and runs as a dense fp32 layer.
      c.latency_s =
          lut_->lookup(config.decomposed() ? LayerConfig{} : config, static_cast<double>(layer.params), tokens);
      return c;
    }
    c.latency_s = 0;  // the factors one after the other, on the same rows (Monarch: each in b calls of 1/b of it)
    const double calls = config.decompose == Decomposition::kMonarch ? static_cast<double>(config.blocks) : 1.0;
    for (const FactorSpec& f : factor_specs(layer, config))
      c.latency_s += calls * lut_->lookup(f.config, static_cast<double>(f.layer.params) / calls, tokens);
    return c;
  }

 private:
  std::unique_ptr<CostModel> roofline_ = cost_models().create("roofline", nlohmann::json::object(), "measured");
  mutable std::unique_ptr<HostLut> lut_;
};

}  // namespace

Registry<CostModel>::Entry measured_entry() {
  return {"measured",
          "host only: latency looked up in a table of this machine's packed-runtime kernel timed over layer sizes, "
          "input rows and configs (measured once and cached); bytes and energy as the roofline",
          {},
          [](const nlohmann::json&) { return std::make_unique<MeasuredHost>(); }};
}

}  // namespace adze
