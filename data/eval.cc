#include "data/eval.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"
#include "model/model.h"

namespace adze {

double Metrics::perplexity() const { return std::exp(cross_entropy); }
double Metrics::bits_per_char() const { return cross_entropy / std::log(2.0); }

nlohmann::json to_json(const Metrics& m) {
  nlohmann::json j = {{"task", to_string(m.task)},        {"samples", m.samples},
                      {"predictions", m.predictions},     {"top1", m.top1},
                      {"cross_entropy", m.cross_entropy}, {"perplexity", m.perplexity()}};
  if (m.task == Task::kLanguageModel) j["bits_per_char"] = m.bits_per_char();
  return j;
}

Metrics evaluate(const ForwardFn& forward, const Dataset& data, const EvalOptions& options) {
  if (options.batch_size < 1)
    throw Error(ErrorKind::kInvalidArgument, "failed to evaluate: batch size must be positive");
  torch::NoGradGuard no_grad;
  if (options.outcomes) options.outcomes->clear();
  Metrics m;
  m.task = data.task;
  double nll_sum = 0;
  int64_t correct = 0;
  const int64_t n = data.size();
  ProgressBar bar("eval " + data.name, n, options.progress);
  for (int64_t start = 0; start < n; start += options.batch_size) {
    const int64_t end = std::min(n, start + options.batch_size);
    at::Tensor x = data.inputs.slice(0, start, end);
    at::Tensor y = data.targets.slice(0, start, end);
    at::Tensor logits = forward(x);
    const bool fits = data.task == Task::kClassification
                          ? logits.dim() == 2 && logits.size(0) == y.size(0)
                          : logits.dim() == 3 && logits.size(0) == y.size(0) && logits.size(1) == y.size(1);
    if (!fits || logits.size(-1) < data.num_classes)
      throw Error(ErrorKind::kInvalidArgument,
                  "failed to evaluate on '" + data.name + "': model output has shape " + c10::str(logits.sizes()) +
                      ", expected " + (data.task == Task::kClassification ? "[N, C]" : "[N, T, V]") +
                      " with N=" + std::to_string(y.size(0)) + " and C/V >= " + std::to_string(data.num_classes));
    logits = logits.reshape({-1, logits.size(-1)}).to(torch::kFloat);
    at::Tensor targets = y.reshape({-1});
    nll_sum += torch::nn::functional::cross_entropy(
                   logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .item<double>();
    const at::Tensor hits = logits.argmax(1).eq(targets);
    correct += hits.sum().item<int64_t>();
    if (options.outcomes) {
      const at::Tensor bytes = hits.to(torch::kUInt8).contiguous();
      options.outcomes->insert(options.outcomes->end(), bytes.data_ptr<uint8_t>(),
                               bytes.data_ptr<uint8_t>() + bytes.numel());
    }
    m.predictions += targets.numel();
    bar.update(end);
  }
  bar.finish();
  m.samples = n;
  m.top1 = m.predictions ? static_cast<double>(correct) / static_cast<double>(m.predictions) : 0.0;
  m.cross_entropy = m.predictions ? nll_sum / static_cast<double>(m.predictions) : 0.0;
  return m;
}

Metrics evaluate(const Model& model, const Dataset& data, const EvalOptions& options) {
  return evaluate([&](const at::Tensor& x) { return model.forward(x); }, data, options);
}

double unigram_entropy_bits(const at::Tensor& stream) {
  at::Tensor counts = torch::bincount(stream.reshape({-1})).to(torch::kDouble);
  at::Tensor p = counts.masked_select(counts > 0) / counts.sum();
  return -(p * torch::log2(p)).sum().item<double>();
}

at::Tensor task_loss(const at::Tensor& logits, const at::Tensor& targets) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
}

}  // namespace adze
