// LayerTable: every compressible weight of a Model, with what compression and cost models need to know.
//
// A layer is a parameter used as the weight of a linear, convolution, embedding, or matmul (a parameter
// operand, possibly through a transpose). A weight used by several ops (tied) is listed once, with its uses
// counted and its MACs summed. MACs are per sample, computed from the shapes propagated at trace time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"

namespace adze {

class Model;

enum class LayerKind { kLinear, kConv1d, kConv2d, kEmbedding, kMatmul };
/// "linear", "conv1d", "conv2d", "embedding", "matmul".
const char* to_string(LayerKind kind);

struct Layer {
  std::string name;    ///< module path ("features.0"), or the parameter name when it has no ".weight" suffix
  std::string weight;  ///< qualified parameter name ("features.0.weight")
  LayerKind kind = LayerKind::kLinear;
  Shape weight_shape;
  int64_t params = 0;                   ///< elements of the weight (bias not included)
  int64_t bias_params = 0;              ///< elements of the bias, 0 when there is none
  int64_t macs = 0;                     ///< multiply-accumulates per sample, over all uses
  int64_t input_elements = 0;           ///< activation elements read per sample (embedding: token ids), over all uses
  int64_t output_elements = 0;          ///< activation elements written per sample, over all uses
  int64_t in_channels = 0;              ///< input features / channels (embedding: vocabulary size)
  int64_t out_channels = 0;             ///< output features / channels (embedding: embedding width)
  int64_t groups = 1;                   ///< convolution groups (depthwise when groups == in_channels == out_channels)
  int reduction_dim = 1;                ///< weight dimension along which dot products (and so N:M groups) run
  int64_t reduction_size = 0;           ///< length of that dimension
  int uses = 1;                         ///< ops using this weight (>1: tied)
  std::vector<std::string> tied_names;  ///< other parameter names of the same tensor
  bool depthwise() const {
    return kind != LayerKind::kLinear && groups > 1 && groups == in_channels && groups == out_channels;
  }
};

struct UnknownOp {
  std::string kind;  ///< e.g. "aten::my_custom_op"
  int count = 0;
};

struct LayerTable {
  std::vector<Layer> layers;           ///< in graph order of first use
  std::vector<UnknownOp> unknown_ops;  ///< ops adze does not know, sorted by name
  int64_t total_params = 0;            ///< every parameter of the model, tied ones once
  int64_t total_macs = 0;              ///< sum over layers
  int64_t batch = 1;                   ///< the traced batch the per-sample figures were divided by
};

/// Builds the table from the model's graph and traced shapes. Never fails on unknown ops.
LayerTable build_layer_table(const Model& model);

}  // namespace adze
