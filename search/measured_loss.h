// The loss increase of a whole choice, measured: every layer's weight replaced at once by the projection of its
// chosen option, the calibration subset evaluated, minus the unmodified model's cross-entropy. Unlike the
// table's sum it sees how layers' errors compound. Projections are computed once per layer and option, on first
// use. The model is left as it was after every call.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/eval.h"
#include "model/layer_table.h"
#include "search/searcher.h"

namespace adze {

class Model;

class MeasuredLoss {
 public:
  /// `base`: the unmodified model's metrics on `data` (SensitivityTable::base).
  MeasuredLoss(Model& model, const LayerTable& table, const Dataset& data, const Problem& problem, int64_t batch,
               Metrics base);
  /// Metrics of the model compressed as `choice` says, on the subset.
  Metrics metrics(const Choice& choice);
  /// metrics(choice).cross_entropy − base cross-entropy.
  double operator()(const Choice& choice) { return metrics(choice).cross_entropy - base_.cross_entropy; }

 private:
  Model& model_;
  const LayerTable& table_;
  const Dataset& data_;
  const Problem& problem_;
  int64_t batch_;
  Metrics base_;
  std::map<std::pair<std::size_t, int>, at::Tensor> projected_;
};

}  // namespace adze
