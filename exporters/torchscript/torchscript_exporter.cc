// torchscript: the compressed model as a TorchScript module (decoded weights, masked, and activation
// fake-quant), loadable by torch::jit::load and Python's torch.jit.load. It represents every plan adze can
// simulate; it accelerates nothing (libtorch computes in fp32).
#include "compress/torchscript_io.h"
#include "exporters/register.h"

namespace adze {
namespace {

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
};

}  // namespace

Registry<Exporter>::Entry torchscript_exporter_entry() {
  return {"torchscript",
          "TorchScript with the decoded weights and activation fake-quant (torch.jit.load)",
          {},
          [](const nlohmann::json&) { return std::make_unique<TorchScriptExporter>(); }};
}

}  // namespace adze
