#include "search/measured_loss.h"

#include <torch/torch.h>

#include "core/error.h"
#include "model/model.h"
#include "search/swapped.h"

namespace adze {

MeasuredLoss::MeasuredLoss(Model& model, const LayerTable& table, const Dataset& data, const Problem& problem,
                           int64_t batch, Metrics base)
    : model_(model), table_(table), data_(data), problem_(problem), batch_(batch), base_(base) {
  if (problem.layers.size() != table.layers.size())
    throw Error(ErrorKind::kInternal, "measured loss: the problem does not match the layer table");
}

Metrics MeasuredLoss::metrics(const Choice& choice) {
  torch::NoGradGuard no_grad;
  Swapped swapped(model_);
  for (std::size_t l = 0; l < table_.layers.size(); ++l) {
    const Layer& layer = table_.layers[l];
    const int index = model_.find_tensor(layer.weight);
    auto& projected = projected_[{l, choice[l]}];
    if (!projected.defined()) {
      const at::Tensor original = model_.tensors()[static_cast<std::size_t>(index)].value;
      const LayerConfig& config = problem_.configs[l][static_cast<std::size_t>(choice[l])];
      projected = project(original, layer, config).decode().to(original.scalar_type());
    }
    swapped.set(index, projected);
  }
  return evaluate(model_, data_, EvalOptions{batch_, false});
}

}  // namespace adze
