// quantize.calibrate: observes activation ranges on the data and inserts fake-quant (compress/activation_quant.h).
#include "compress/activation_quant.h"
#include "compress/passes/passes.h"
#include "core/error.h"

namespace adze {
namespace {

class CalibratePass : public Pass {
 public:
  explicit CalibratePass(ActivationObserver o) : observer_(std::move(o)) {}
  void run(CompressionContext& c) override {
    const ActivationQuantResult r = quantize_activations(c, observer_);
    c.notes.push_back("quantize.calibrate: " + std::to_string(r.taps) + " activation fake-quant(s) by " +
                      observer_.method + " over " + std::to_string(observer_.batches) + " batches");
  }

 private:
  ActivationObserver observer_;
};

}  // namespace

PassRegistry::Entry calibrate_pass_entry() {
  using O = ActivationObserver;
  return PassRegistry::entry(
      "quantize.calibrate",
      "calibrate activation ranges and insert fake-quant on the input of every layer with act_bits (and between "
      "integer ops: residual adds, average pools)",
      OptionList<O>()
          .add(&O::method, "method", "range observer: minmax, percentile or mse (least squared error)",
               one_of({"minmax", "percentile", "mse"}))
          .add(&O::percentile, "percentile", "for percentile: the share of values inside the range, in %",
               between(0, 100))
          .add(&O::batches, "batches", "calibration batches (of the traced batch size)", at_least(1))
          .add(&O::placement, "placement",
               "integer: also quantize the operands of residual adds and average pools between quantized layers, "
               "so that integer runtimes (ONNX Runtime) keep them in int8; inputs: only the inputs of quantized "
               "layers",
               one_of({"integer", "inputs"})),
      [](const O& o) { return std::make_unique<CalibratePass>(o); },
      PassTraits{/*learns_from_data=*/true, /*evaluates=*/false});
}

}  // namespace adze
