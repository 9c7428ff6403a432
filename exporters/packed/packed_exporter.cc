// packed: adze's own deployable format (FORMAT.md) — one safetensors-compatible file whose size is the model's
// real compressed size, opened by mmap and run by PackedModel (packed_model.h).
#include "exporters/packed/packed_model.h"
#include "exporters/register.h"

namespace adze {
namespace {

class PackedExporter : public Exporter {
 public:
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8, 32};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup};
      k.asymmetric_weights = k.pow2_weights = true;
      k.act_bits = {0, 8, 16};
      k.any_nm = k.permutation = true;
      k.unstructured = false;  // an unstructured mask has no compact index form here
      k.notes =
          "weights stay packed in memory (codes at their bit width, N:M as kept values + index bits) and are decoded "
          "64 rows at a time; arithmetic is fp32";
      return k;
    }();
    return c;
  }
  void write(const CompressedModel& m, const std::string& path) const override { packed::write_packed(m, path); }
};

}  // namespace

Registry<Exporter>::Entry packed_exporter_entry() {
  return {"packed",
          "adze's packed format: safetensors layout, bit-packed codes, N:M as kept values + index bits, mmap-able",
          {},
          [](const nlohmann::json&) { return std::make_unique<PackedExporter>(); }};
}

}  // namespace adze
