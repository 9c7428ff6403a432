// torchscript: the compressed model as a TorchScript module (decoded weights, masked, and activation
// fake-quant), loadable by torch::jit::load and Python's torch.jit.load. It represents every plan adze can
// simulate; it accelerates nothing (libtorch computes in fp32). Its graph is the one traced at the export batch
// size, or with the option dynamic_batch the batch-generic one (model/batch_symbolic.h) that takes any.
#include <torch/script.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/files.h"
#include "core/zip_bounds.h"
#include "exporters/register.h"
#include "exporters/runner.h"
#include "model/batch_symbolic.h"
#include "model/torchscript_io.h"

namespace adze {
namespace {

// What the exporter records beside the code: {"batch": the batch size its graph runs at, 0 when it takes any;
// with a batch, "input": {"shape", "dtype"}}. Files from elsewhere have none and are taken to take any batch.
constexpr const char* kCardName = "adze.json";

// libtorch's interpreter on the file, in this process (threads as the process sets them).
class TorchScriptRunner : public Runner {
 public:
  explicit TorchScriptRunner(const std::string& path) {
    torch::jit::ExtraFilesMap extra{{kCardName, ""}};
    check_torch_save_file(path, "'" + path + "'", "loadable TorchScript file");
    try {
      module_ = torch::jit::load(path, c10::nullopt, extra);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, "'" + path + "' is not a loadable TorchScript file: " + first_line_of(e));
    }
    module_.eval();
    if (!extra[kCardName].empty()) read_card(path, extra[kCardName]);
  }
  std::string runtime_name() const override { return "libtorch"; }
  std::optional<InputSpec> input() const override { return input_; }
  int64_t batch() const override { return batch_; }
  at::Tensor run(const at::Tensor& x) override {
    torch::NoGradGuard no_grad;
    // A graph traced at one batch size runs whole batches of it (the last padded); any other runs 256 samples
    // per forward, for bounded memory on whole datasets.
    const int64_t chunk = batch_ > 0 ? batch_ : 256;
    std::vector<at::Tensor> outs;
    for (int64_t start = 0; start < x.size(0); start += chunk) {
      const int64_t n = std::min(chunk, x.size(0) - start);
      at::Tensor piece = x.slice(0, start, start + n);
      if (batch_ > 0) piece = pad_to_batch(piece, batch_);
      outs.push_back(module_.forward({piece}).toTensor().slice(0, 0, n));
    }
    return outs.size() == 1 ? outs[0] : torch::cat(outs);
  }

 private:
  void read_card(const std::string& path, const std::string& text) {
    try {
      const auto card = nlohmann::json::parse(text);
      batch_ = card.at("batch").get<int64_t>();
      if (batch_ > 0)
        input_ = InputSpec{card.at("input").at("shape").get<Shape>(), card.at("input").at("dtype").get<std::string>()};
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::kIo, "'" + path + "': its " + kCardName + " is not adze's (" + e.what() + ")");
    }
  }

  torch::jit::Module module_;
  int64_t batch_ = 0;
  std::optional<InputSpec> input_;
};

std::string card_text(const Model& model, int64_t batch) {
  nlohmann::json card = {{"batch", batch}};
  if (batch > 0) card["input"] = {{"shape", model.input().shape}, {"dtype", model.input().dtype}};
  return card.dump() + "\n";
}

class TorchScriptExporter : public Exporter {
 public:
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8, 32};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup};
      k.asymmetric_weights = true;
      k.quantizers = {Quantizer::kUniform, Quantizer::kPow2};
      k.act_bits = {0, 8, 16};
      k.any_nm = k.unstructured = k.permutation = true;
      k.decompositions = {Decomposition::kLowRank, Decomposition::kMonarch, Decomposition::kSmartDeal};
      k.notes =
          "none: weights are stored decoded in fp32 and fake-quant runs in fp32; for checking and for PyTorch users";
      return k;
    }();
    return c;
  }
  explicit TorchScriptExporter(bool dynamic_batch) : dynamic_batch_(dynamic_batch) {}
  void write(const CompressedModel& m, const std::string& path) const override {
    if (!dynamic_batch_) {
      const int64_t batch = specialised_graph_takes_any_batch(m.model) ? 0 : m.model.traced_batch();
      return save_torchscript(m.model, path, {{kCardName, card_text(m.model, batch)}});
    }
    std::shared_ptr<torch::jit::Graph> generic = batch_generic_graph(m.model);
    if (!generic)
      throw Error(ErrorKind::kUnsupported,
                  "failed to export '" + m.dir + "' as torchscript with dynamic_batch: its graph holds at batch size " +
                      std::to_string(m.model.traced_batch()) + " only, because " + m.model.batch_dependence().why_not);
    save_torchscript(m.model.with_graph(std::move(generic)), path, {{kCardName, card_text(m.model, 0)}});
  }
  bool recognizes(const std::string& path) const override {
    return std::filesystem::path(path).extension() == ".pt" && !std::filesystem::is_directory(path);
  }
  std::string file_form() const override { return ".pt (TorchScript)"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions&) const override {
    require_readable_file(path, "TorchScript model");
    return std::make_unique<TorchScriptRunner>(path);
  }

 private:
  bool dynamic_batch_;
};

}  // namespace

Registry<Exporter>::Entry torchscript_exporter_entry() {
  struct Options {
    bool dynamic_batch = false;
  };
  return Registry<Exporter>::entry(
      "torchscript", "TorchScript with the decoded weights and activation fake-quant (torch.jit.load)",
      OptionList<Options>().add(&Options::dynamic_batch, "dynamic_batch",
                                "write the batch-generic graph: one file that runs at any batch size (where the model "
                                "was found batch-generic when loaded; an error otherwise)"),
      [](const Options& o) { return std::make_unique<TorchScriptExporter>(o.dynamic_batch); });
}

}  // namespace adze
