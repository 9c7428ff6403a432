// A worked example of an exporter (docs/design.md, "How to add"): "example.frozen" writes the compressed model as
// a frozen TorchScript module (torch::jit::freeze: parameters inlined as constants, attribute reads folded
// away), which libtorch and Python's torch.jit.load run as they are. Its Runner runs the file in libtorch. As a
// built-in it would live in exporters/frozen/ and take one line of core/builtins.def:
// ADZE_EXPORTER(frozen_exporter_entry).
#include <torch/script.h>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "exporters/exporter.h"
#include "exporters/runner.h"
#include "model/torchscript_io.h"

namespace adze::example {
namespace {

// Beside the code, the batch the frozen graph runs at (its shapes are constants).
constexpr const char* kBatchFile = "batch.txt";

class FrozenRunner : public Runner {
 public:
  explicit FrozenRunner(const std::string& path) {
    torch::jit::ExtraFilesMap extra{{kBatchFile, ""}};
    try {
      module_ = torch::jit::load(path, c10::nullopt, extra);
      batch_ = std::stoll(extra[kBatchFile]);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, "'" + path + "' is not a frozen TorchScript file of adze's: " + first_line_of(e));
    }
    if (batch_ < 1) throw Error(ErrorKind::kIo, "'" + path + "': its " + kBatchFile + " holds no batch size");
  }
  std::string runtime_name() const override { return "libtorch (frozen)"; }
  int64_t batch() const override { return batch_; }
  at::Tensor run(const at::Tensor& x) override {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> outs;
    for (int64_t start = 0; start < x.size(0); start += batch_) {  // whole traced batches, the last padded
      const int64_t n = std::min(batch_, x.size(0) - start);
      outs.push_back(module_.forward({pad_to_batch(x.slice(0, start, start + n), batch_)}).toTensor().slice(0, 0, n));
    }
    return torch::cat(outs);
  }

 private:
  torch::jit::Module module_;
  int64_t batch_ = 0;
};

class FrozenExporter : public Exporter {
 public:
  const Contract& contract() const override {
    static const Contract c = [] {
      // What the simulation's TorchScript holds (every plan, decoded to fp32), as the built-in says.
      Contract k = exporter_registry().create("torchscript", {}, "example.frozen")->contract();
      k.notes = "none: fp32 weights and fake-quant, as constants of a frozen graph";
      return k;
    }();
    return c;
  }
  void write(const CompressedModel& m, const std::string& path) const override {
    write_atomically(path, [&](const std::string& tmp) {
      save_torchscript(m.model, tmp);
      torch::jit::Module module = torch::jit::load(tmp);
      module.eval();
      torch::jit::freeze(module).save(tmp, {{kBatchFile, std::to_string(m.model.traced_batch())}});
    });
  }
  bool recognizes(const std::string& path) const override {
    const std::string name = std::filesystem::path(path).filename().string();
    return name.size() > 10 && name.compare(name.size() - 10, 10, ".frozen.pt") == 0;
  }
  std::string file_form() const override { return ".frozen.pt (frozen TorchScript)"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions&) const override {
    require_readable_file(path, "frozen TorchScript model");
    return std::make_unique<FrozenRunner>(path);
  }
};

}  // namespace

Registry<Exporter>::Entry frozen_exporter_entry() {
  return {"example.frozen",
          "frozen TorchScript (parameters inlined as constants) for libtorch and torch.jit.load",
          {},
          [](const nlohmann::json&) { return std::make_unique<FrozenExporter>(); }};
}

}  // namespace adze::example
