// torchscript: the compressed model as a TorchScript module (decoded weights, masked, and activation
// fake-quant), loadable by torch::jit::load and Python's torch.jit.load. It represents every plan adze can
// simulate; it accelerates nothing (libtorch computes in fp32).
#include <torch/script.h>

#include <filesystem>

#include "compress/torchscript_io.h"
#include "core/error.h"
#include "core/files.h"
#include "exporters/register.h"
#include "exporters/runner.h"

namespace adze {
namespace {

// libtorch's interpreter on the file, in this process (threads as the process sets them).
class TorchScriptRunner : public Runner {
 public:
  explicit TorchScriptRunner(const std::string& path) {
    try {
      module_ = torch::jit::load(path);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, "'" + path + "' is not a loadable TorchScript file: " + first_line_of(e));
    }
    module_.eval();
  }
  std::string runtime_name() const override { return "libtorch"; }
  int64_t batch() const override { return 0; }
  at::Tensor run(const at::Tensor& x) override {
    torch::NoGradGuard no_grad;
    constexpr int64_t kChunk = 256;  // samples per forward: bounded memory on whole datasets
    if (x.size(0) <= kChunk) return module_.forward({x}).toTensor();
    std::vector<at::Tensor> outs;
    for (int64_t start = 0; start < x.size(0); start += kChunk)
      outs.push_back(module_.forward({x.slice(0, start, std::min(x.size(0), start + kChunk))}).toTensor());
    return torch::cat(outs);
  }

 private:
  torch::jit::Module module_;
};

class TorchScriptExporter : public Exporter {
 public:
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8, 32};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup};
      k.asymmetric_weights = k.pow2_weights = true;
      k.act_bits = {0, 8, 16};
      k.any_nm = k.unstructured = k.permutation = true;
      k.notes =
          "none: weights are stored decoded in fp32 and fake-quant runs in fp32; for checking and for PyTorch users";
      return k;
    }();
    return c;
  }
  void write(const CompressedModel& m, const std::string& path) const override { save_torchscript(m.model, path); }
  bool recognizes(const std::string& path) const override {
    return std::filesystem::path(path).extension() == ".pt" && !std::filesystem::is_directory(path);
  }
  std::string file_form() const override { return ".pt (TorchScript)"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions&) const override {
    require_readable_file(path, "TorchScript model");
    return std::make_unique<TorchScriptRunner>(path);
  }
};

}  // namespace

Registry<Exporter>::Entry torchscript_exporter_entry() {
  return {"torchscript",
          "TorchScript with the decoded weights and activation fake-quant (torch.jit.load)",
          {},
          [](const nlohmann::json&) { return std::make_unique<TorchScriptExporter>(); }};
}

}  // namespace adze
