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
  return {"quantize.calibrate",
          "calibrate activation ranges and insert fake-quant on the input of every layer with act_bits (and between "
          "integer ops: residual adds, average pools)",
          {{"method", "string", "minmax", "range observer: minmax, percentile or mse (least squared error)"},
           {"percentile", "number", 99.99, "for percentile: the share of values inside the range, in %"},
           {"batches", "int", 8, "calibration batches (of the traced batch size)"},
           {"placement", "string", "integer",
            "integer: also quantize the operands of residual adds and average pools between quantized layers, so "
            "that integer runtimes (ONNX Runtime) keep them in int8; inputs: only the inputs of quantized layers"}},
          [](const nlohmann::json& o) {
            ActivationObserver obs;
            obs.method = o.at("method").get<std::string>();
            obs.percentile = o.at("percentile").get<double>();
            obs.batches = o.at("batches").get<int64_t>();
            obs.placement = o.at("placement").get<std::string>();
            if (obs.placement != "integer" && obs.placement != "inputs")
              throw Error(ErrorKind::kInvalidConfig, "placement '" + obs.placement + "': expected integer or inputs");
            if (obs.method != "minmax" && obs.method != "percentile" && obs.method != "mse")
              throw Error(ErrorKind::kInvalidConfig, "method '" + obs.method + "': expected minmax, percentile or mse");
            if (obs.batches < 1) throw Error(ErrorKind::kInvalidConfig, "batches must be at least 1");
            return std::make_unique<CalibratePass>(obs);
          },
          PassTraits{/*learns_from_data=*/true, /*evaluates=*/false}};
}

}  // namespace adze
