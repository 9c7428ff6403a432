// TappedGraph: a model's graph with chosen intermediate values as extra outputs, compiled once (activation
// calibration reads the inputs of its layers, `adze verify` compares every layer's output with an export's).
//
// layer_outputs() names the value that is "a layer's output", by one rule that the packed runtime follows too
// (packed_model.cc): the output of every op that combines the layer's weight — read directly or through ops on
// the weight alone, such as t() — with a value computed from the model input.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace adze {

class TappedGraph {
 public:
  /// `taps` are values of model.graph(); the model must outlive this and not change meanwhile.
  TappedGraph(const Model& model, const std::vector<const torch::jit::Value*>& taps);
  ~TappedGraph();
  TappedGraph(const TappedGraph&) = delete;
  TappedGraph& operator=(const TappedGraph&) = delete;

  struct Result {
    at::Tensor output;               ///< the model's (first) output
    std::vector<at::Tensor> values;  ///< the tapped values, in the order of `taps`
  };
  /// Runs x, exactly the traced batch.
  Result run(const at::Tensor& x) const;

 private:
  const Model& model_;
  std::size_t extra_ = 0;
  std::unique_ptr<torch::jit::Code> code_;
};

struct LayerOutput {
  std::string key;  ///< the layer's name; "name@2", "name@3", … for later ops reading the same weight (tied)
  const torch::jit::Value* value;
};

/// Every layer output of `model` in graph order; `layer_of_weight` maps a weight tensor's name to its layer.
std::vector<LayerOutput> layer_outputs(const Model& model, const std::map<std::string, std::string>& layer_of_weight);

/// The key of the next output of `layer`: the name itself, then "layer@2", "layer@3", … (`seen` counts them).
std::string layer_output_key(const std::string& layer, std::map<std::string, int>& seen);

}  // namespace adze
