// packed: adze's own deployable format (runtime/FORMAT.md) — one safetensors-compatible file whose size is the
// model's real compressed size, opened by mmap and run by adze's runtime (runtime/packed_model.h).
#include <filesystem>

#include "core/isa.h"
#include "exporters/packed/packed_writer.h"
#include "exporters/register.h"
#include "exporters/runner.h"

namespace adze {
namespace {

class PackedRunner : public Runner {
 public:
  PackedRunner(const std::string& path, const packed::RunOptions& options)
      : model_(packed::PackedModel::open(path, options)) {}
  std::string runtime_name() const override { return "adze runtime"; }
  std::optional<InputSpec> input() const override { return model_.input(); }
  int64_t batch() const override { return model_.batch(); }
  at::Tensor run(const at::Tensor& x) override { return model_.forward(x); }
  bool exposes_layers() const override { return true; }
  at::Tensor run_by_layer(const at::Tensor& x, std::map<std::string, at::Tensor>* layers,
                          const std::map<std::string, at::Tensor>* from) override {
    return model_.forward(x, layers, from);
  }
  nlohmann::json profile(const at::Tensor& x, int runs) override {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : model_.profile(x, runs))
      out.push_back({{"op", n.op},
                     {"layer", n.layer},
                     {"integer", n.integer},
                     {"kernels", n.integer ? "integer"
                                 : n.own   ? "adze fp32"
                                           : "ATen"},
                     {"seconds", n.seconds}});
    return out;
  }
  nlohmann::json describe() const override {
    return {{"isa", to_string(active_isa())},
            {"dynamic_activations", model_.options().dynamic_activations},
            {"integer_layers", model_.integer_layers()},
            {"dynamic_layers", model_.dynamic_layers()},
            {"float_layers", model_.float_layers()},
            {"aten_ops", model_.aten_ops()}};
  }

 private:
  packed::PackedModel model_;
};

class PackedExporter : public Exporter {
 public:
  explicit PackedExporter(packed::WriteOptions options) : options_(options) {}
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8, 32};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup};
      k.asymmetric_weights = true;
      k.quantizers = {Quantizer::kUniform, Quantizer::kPow2};
      k.act_bits = {0, 8, 16};
      k.any_nm = k.permutation = true;
      k.unstructured = true;  // a bitmap index; such layers run dense on the integer kernels
      // Stored as their two factors. Low-rank and Monarch run as them (two layers; one op); SmartDeal's weight
      // is composed once at open and runs in fp32.
      k.decompositions = {Decomposition::kLowRank, Decomposition::kMonarch, Decomposition::kSmartDeal};
      k.accelerated_weight_bits = {2, 3, 4, 5, 6, 7, 8};
      k.accelerated_nm = {NMPattern::parse("2:4"), NMPattern::parse("1:4"), NMPattern::parse("2:8"),
                          NMPattern::parse("4:8")};
      k.notes =
          "linear layers with uniform weights (symmetric; asymmetric up to 7 bits) run on integer kernels: int8 "
          "activations (calibrated, or quantized per row on the fly) times the packed codes, N:M skipped; "
          "power-of-two and float weights are decoded to fp32; unstructured sparsity is stored with a bitmap index "
          "and runs dense; decomposed layers are stored as their factors, "
          "low-rank and Monarch run as them, SmartDeal composed to fp32 at open";
      return k;
    }();
    return c;
  }
  void write(const CompressedModel& m, const std::string& path) const override {
    packed::write_packed(m, path, options_);
  }
  bool recognizes(const std::string& path) const override {
    return std::filesystem::path(path).extension() == ".adze" && !std::filesystem::is_directory(path);
  }
  std::string file_form() const override { return ".adze (packed)"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions& options) const override {
    return std::make_unique<PackedRunner>(path, options.packed);
  }

 private:
  packed::WriteOptions options_;
};

}  // namespace

Registry<Exporter>::Entry packed_exporter_entry() {
  using O = packed::WriteOptions;
  return Registry<Exporter>::entry(
      "packed",
      "adze's packed format: safetensors layout, bit-packed codes, N:M as kept values + index bits, mmap-able",
      OptionList<O>().add(
          &O::dynamic_batch, "dynamic_batch",
          "a batch-generic file: the runtime runs any batch size in one call (the model must be batch-generic)"),
      [](const O& o) { return std::make_unique<PackedExporter>(o); });
}

}  // namespace adze
