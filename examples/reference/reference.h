// The reference models: recipes, training with a fixed seed, and the cache of trained TorchScript files.
//
// Each trained model is saved as <cache>/<name>.pt (TorchScript, loadable by torch.jit.load) with a card
// <cache>/<name>.json beside it: input spec, task, data, parameter count, validation and test metrics, the
// training budget and wall time, and for fortune-gpt the unigram entropy of the corpus as the baseline for
// bits per character. A cached model is reused while its card's recipe version matches.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/model.h"

namespace adze::reference {

struct Recipe {
  std::string name;     ///< "fmnist-cnn"
  std::string summary;  ///< one line for listings
  std::string data;     ///< data spec ("fmnist", "fortunes")
  Task task;
  InputSpec input;          ///< per-sample shape with batch 1
  int version;              ///< bumped whenever the architecture or training changes
  std::string quality_bar;  ///< what the trained model must reach, for the card and the main job
};

/// The three reference recipes, in a fixed order.
const std::vector<Recipe>& recipes();
/// The recipe with this name; throws Error(kInvalidArgument) listing the known names otherwise.
const Recipe& recipe(const std::string& name);

/// ${ADZE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/adze}/models (core/files.h cache_dir).
std::string default_cache_dir();

struct TrainOptions {
  std::string cache_dir;  ///< empty: default_cache_dir()
  bool force = false;     ///< retrain even when a matching cached model exists
  bool progress = true;
  uint64_t seed = 0;
  double budget = 1.0;  ///< fraction of the recipe's training steps (tests use a small one)
};

struct Trained {
  std::string model_path;  ///< <cache>/<name>.pt
  nlohmann::json card;     ///< the card's contents
  bool from_cache = false;
};

/// Returns the cached model when its card matches the recipe (and options.force is false), else trains,
/// evaluates and saves it (atomically).
Trained ensure_trained(const std::string& name, const TrainOptions& options);

/// <cache>/<name>.pt when it exists.
std::optional<std::string> cached_model_path(const std::string& name, const std::string& cache_dir = "");

/// A model argument as every command and sweep takes it: an existing TorchScript path, or the name of a trained
/// reference model in the cache. Error(kIo) naming it otherwise (and how to train a reference model).
std::string resolve_model_path(const std::string& model);

}  // namespace adze::reference
