#include "examples/reference/reference.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/schedule.h"
#include "data/eval.h"
#include "examples/reference/models.h"
#include "model/frontend.h"
#include "model/torchscript_io.h"

namespace adze::reference {
namespace fs = std::filesystem;
namespace {

struct Schedule {
  int64_t steps;
  int64_t batch;
  double lr;
  double weight_decay;
  int64_t warmup;
};

// Linear warm-up, then cosine decay to 5% of the peak rate.
double learning_rate(const Schedule& s, int64_t step) {
  if (step < s.warmup) return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  const double progress =
      static_cast<double>(step - s.warmup) / static_cast<double>(std::max<int64_t>(1, s.steps - s.warmup));
  return s.lr * cosine_decay(progress);
}

void set_lr(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

std::string status_line(double loss) { return "loss " + std::to_string(loss).substr(0, 6); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The loop both recipes share: AdamW on the warm-up + cosine schedule, optional gradient-norm clipping, and a
// progress bar showing a smoothed loss. `loss_at(step)` returns the minibatch loss. Returns the wall time.
double run_training(const std::vector<at::Tensor>& params, const Schedule& s, double clip, bool progress,
                    const std::string& label, const std::function<at::Tensor(int64_t)>& loss_at) {
  const auto start = std::chrono::steady_clock::now();
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay));
  ProgressBar bar("train " + label, s.steps, progress);
  double smoothed = 0;
  for (int64_t step = 0; step < s.steps; ++step) {
    set_lr(optimizer, learning_rate(s, step));
    optimizer.zero_grad();
    at::Tensor loss = loss_at(step);
    loss.backward();
    if (clip > 0) torch::nn::utils::clip_grad_norm_(params, clip);
    optimizer.step();
    smoothed = step == 0 ? loss.item<double>() : 0.98 * smoothed + 0.02 * loss.item<double>();
    bar.update(step + 1, status_line(smoothed));
  }
  bar.finish(status_line(smoothed));
  return seconds_since(start);
}

// Minibatches of shuffled classification data; one permutation per epoch from a seeded generator.
template <typename Net>
double train_classifier(Net& net, const Dataset& train, const Schedule& s, uint64_t seed, bool progress,
                        const std::string& label) {
  auto gen = at::detail::createCPUGenerator(seed);
  at::Tensor order;
  int64_t cursor = train.size();
  net->train();
  const double seconds = run_training(net->parameters(), s, 0.0, progress, label, [&](int64_t) {
    if (cursor + s.batch > train.size()) {
      order = torch::randperm(train.size(), gen);
      cursor = 0;
    }
    at::Tensor idx = order.slice(0, cursor, cursor + s.batch);
    cursor += s.batch;
    return torch::nn::functional::cross_entropy(net->forward(train.inputs.index_select(0, idx)),
                                                train.targets.index_select(0, idx));
  });
  net->eval();
  return seconds;
}

// Next-token prediction on random windows of the token stream.
double train_language_model(FortuneGpt& net, const Dataset& train, const Schedule& s, uint64_t seed, bool progress) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t context = FortuneGptImpl::kContext;
  const int64_t positions = train.stream.size(0) - context - 1;
  const at::Tensor offsets = torch::arange(context + 1);
  net->train();
  const double seconds = run_training(net->parameters(), s, 1.0, progress, "fortune-gpt", [&](int64_t) {
    at::Tensor starts = torch::randint(positions, {s.batch, 1}, gen);
    at::Tensor windows = train.stream.index_select(0, (starts + offsets).reshape({-1})).view({s.batch, context + 1});
    at::Tensor logits = net->forward(windows.slice(1, 0, context));
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                windows.slice(1, 1, context + 1).reshape({-1}));
  });
  net->eval();
  return seconds;
}

Schedule scaled(Schedule s, double budget) {
  s.steps = std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(s.steps) * budget)));
  s.warmup = std::min(s.warmup, std::max<int64_t>(1, s.steps / 10));
  return s;
}

struct Outcome {
  Model model;
  nlohmann::json metrics;
  nlohmann::json extra;
  Schedule schedule;
  double train_seconds;
};

template <typename Net>
Outcome train_image_model(Net net, const Recipe& r, const Schedule& schedule, const TrainOptions& o) {
  const Dataset train = load_dataset(r.data, {"train", 0, 0});
  const double seconds = train_classifier(net, train, schedule, o.seed, o.progress, r.name);
  InputSpec traced = r.input;
  traced.shape[0] = 256;
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, traced, r.name);
  nlohmann::json metrics;
  for (const char* split : {"val", "test"})
    metrics[split] = to_json(evaluate(model, load_dataset(r.data, {split, 0, 0}), {256, o.progress}));
  return Outcome{std::move(model), metrics, {}, schedule, seconds};
}

Outcome train_gpt(const Recipe& r, const Schedule& schedule, const TrainOptions& o) {
  const int64_t context = FortuneGptImpl::kContext;
  const Dataset train = load_dataset(r.data, {"train", 0, context});
  FortuneGpt net;
  const double seconds = train_language_model(net, train, schedule, o.seed, o.progress);
  InputSpec traced = r.input;
  traced.shape[0] = 32;
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, traced, r.name);
  nlohmann::json metrics, extra;
  for (const char* split : {"val", "test"}) {
    const Dataset data = load_dataset(r.data, {split, 0, context});
    metrics[split] = to_json(evaluate(model, data, {32, o.progress}));
    if (std::string(split) == "val") extra["unigram_bits_per_char"] = unigram_entropy_bits(data.stream);
  }
  return Outcome{std::move(model), metrics, extra, schedule, seconds};
}

Outcome train_recipe(const Recipe& r, const TrainOptions& o) {
  torch::manual_seed(o.seed);
  if (r.name == "fmnist-cnn")
    return train_image_model(FmnistCnn(), r, scaled({1720, 128, 2e-3, 1e-4, 100}, o.budget), o);
  if (r.name == "fmnist-vit")
    return train_image_model(FmnistVit(), r, scaled({1400, 128, 2e-3, 0.05, 100}, o.budget), o);
  return train_gpt(r, scaled({1050, 16, 2e-3, 0.01, 80}, o.budget), o);
}

}  // namespace

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> all = {
      {"fmnist-cnn",
       "CNN with BatchNorm on Fashion-MNIST (2 conv + 2 linear)",
       "fmnist",
       Task::kClassification,
       {{1, 1, 28, 28}, "float32"},
       1,
       "test top-1 >= 90%"},
      {"fmnist-vit",
       "tiny vision transformer on Fashion-MNIST (7x7 patches, 4 blocks, width 64)",
       "fmnist",
       Task::kClassification,
       {{1, 1, 28, 28}, "float32"},
       2,
       "test top-1 >= 85%"},
      {"fortune-gpt",
       "character-level decoder-only transformer on fortunes (4 blocks, width 128, context 64)",
       "fortunes",
       Task::kLanguageModel,
       {{1, FortuneGptImpl::kContext}, "int64"},
       3,
       "validation bits/char well below the corpus unigram entropy"},
  };
  return all;
}

const Recipe& recipe(const std::string& name) {
  std::string known;
  for (const auto& r : recipes()) {
    if (r.name == name) return r;
    known += (known.empty() ? "" : ", ") + r.name;
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown reference model '" + name + "' (known: " + known + ")");
}

std::string default_cache_dir() { return cache_dir("models"); }

std::optional<std::string> cached_model_path(const std::string& name, const std::string& cache_dir) {
  const std::string path = (cache_dir.empty() ? default_cache_dir() : cache_dir) + "/" + name + ".pt";
  if (fs::is_regular_file(path)) return path;
  return std::nullopt;
}

Trained ensure_trained(const std::string& name, const TrainOptions& options) {
  const Recipe& r = recipe(name);
  const std::string dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  const std::string model_path = dir + "/" + name + ".pt";
  const std::string card_path = card_path_for(model_path);
  if (!options.force && fs::is_regular_file(model_path) && fs::is_regular_file(card_path)) {
    try {
      auto card = nlohmann::json::parse(read_file_text(card_path));
      if (card.value("version", -1) == r.version && card.value("budget", 0.0) == options.budget &&
          card.value("seed", uint64_t{0}) == options.seed)
        return Trained{model_path, card, true};
    } catch (const nlohmann::json::exception&) {
      // An unreadable card means the cache entry is stale: retrain.
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::kIo, "failed to create cache directory '" + dir + "': " + ec.message());

  const auto start = std::chrono::steady_clock::now();
  Outcome outcome = train_recipe(r, options);
  const double seconds = seconds_since(start);
  nlohmann::json card = {{"name", r.name},
                         {"version", r.version},
                         {"summary", r.summary},
                         {"task", to_string(r.task)},
                         {"data", r.data},
                         {"input", {{"shape", r.input.shape}, {"dtype", r.input.dtype}}},
                         {"params", outcome.model.parameter_count()},
                         {"metrics", outcome.metrics},
                         {"quality_bar", r.quality_bar},
                         {"seed", options.seed},
                         {"budget", options.budget},
                         {"train",
                          {{"steps", outcome.schedule.steps},
                           {"batch", outcome.schedule.batch},
                           {"lr", outcome.schedule.lr},
                           {"seconds", outcome.train_seconds},
                           {"total_seconds", seconds},
                           {"threads", torch::get_num_threads()}}}};
  if (!outcome.extra.is_null()) card["baseline"] = outcome.extra;
  save_torchscript(outcome.model, model_path);
  write_file_atomically(card_path, card.dump(2) + "\n");
  return Trained{model_path, card, false};
}

std::string resolve_model_path(const std::string& model) {
  if (std::filesystem::exists(model)) return model;
  for (const auto& r : recipes()) {
    if (r.name != model) continue;
    if (auto path = cached_model_path(model)) return *path;
    throw Error(ErrorKind::kIo, "failed to open model '" + model +
                                    "': it is a reference model that is not trained yet (run: adze reference train " +
                                    model + ")");
  }
  throw Error(ErrorKind::kIo, "failed to open model '" + model + "': no such file, nor a reference model name");
}

}  // namespace adze::reference
