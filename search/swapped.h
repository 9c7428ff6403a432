// Swapped: puts tensors into a model for a while and gives the old ones back when it goes out of scope (also
// when a measurement throws), so that the model is left as it was. Shared by the sensitivity table and the
// measured loss of whole choices.
#pragma once

#include <utility>
#include <vector>

#include "model/model.h"

namespace adze {

class Swapped {
 public:
  explicit Swapped(Model& model) : model_(model) {}
  ~Swapped() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) model_.set_tensor(it->first, it->second);
  }
  Swapped(const Swapped&) = delete;
  Swapped& operator=(const Swapped&) = delete;
  void set(int index, const at::Tensor& value) {
    saved_.emplace_back(index, model_.tensors()[static_cast<std::size_t>(index)].value);
    model_.set_tensor(index, value);
  }

 private:
  Model& model_;
  std::vector<std::pair<int, at::Tensor>> saved_;
};

}  // namespace adze
