// finetune.ste and finetune.admm: train the model toward its plan's constraint set (compress/compressor.h),
// on the training data, optionally distilling from the uncompressed model.
//
// Every parameter trains (biases and norms too); the plan's layers train through their projections. Latent
// weights start from the weights before any one-shot projection, and a mask an earlier sparsity step chose is
// kept (mask "fixed"); after another fine-tuning pass, they continue from the latent weights it left.
// Batches are drawn with the pipeline's seed; the learning rate follows a cosine from `lr` to 5% of it. With
// act_scales "learn", activation fake-quant scales train too (LSQ), in their own parameter group; with
// weight_scales "learn", so do the weights' quantization scales (as log-scales, compress/compressor.h). The loss is
// the task's cross-entropy, mixed with distillation when `distill` > 0:
//   (1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).
#include <torch/torch.h>

#include <cmath>

#include "compress/activation_quant.h"
#include "compress/compressor.h"
#include "compress/passes/passes.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/schedule.h"
#include "data/eval.h"

namespace adze {
namespace {

struct FinetuneOptions {
  CompressorOptions compressor;
  int64_t steps = 300;
  double lr = 1e-4;
  double weight_decay = 0;
  int64_t batch_size = 0;  ///< 0: the model's traced batch
  double distill = 0;      ///< α
  double temperature = 2;
  bool learn_act_scales = false;
  double act_scale_lr = 0;  ///< 0: lr / 10
  double weight_scale_lr = 1e-2;
};

at::Tensor distillation_loss(const at::Tensor& student, const at::Tensor& teacher, double t) {
  namespace F = torch::nn::functional;
  const int64_t classes = student.size(-1);
  at::Tensor log_p = F::log_softmax(student.reshape({-1, classes}) / t, F::LogSoftmaxFuncOptions(1));
  at::Tensor q = F::softmax(teacher.reshape({-1, classes}) / t, F::SoftmaxFuncOptions(1));
  return F::kl_div(log_p, q, F::KLDivFuncOptions().reduction(torch::kBatchMean)) * (t * t);
}

std::string status(double loss, const Compressor& c) {
  std::string s = "loss " + std::to_string(loss).substr(0, 6);
  if (c.in_admm_phase()) s += "  admm ‖W−Z‖/‖W‖ " + std::to_string(c.admm_residual()).substr(0, 6);
  return s;
}

class FinetunePass : public Pass {
 public:
  FinetunePass(std::string name, FinetuneOptions o) : name_(std::move(name)), o_(o) {}

  void run(CompressionContext& c) override {
    if (!c.train_data)
      throw Error(ErrorKind::kInvalidArgument, "needs training data (--data; its train split is used)");
    if (o_.distill > 0 && !c.reference)
      throw Error(ErrorKind::kInvalidArgument, "distill > 0 needs the uncompressed model");
    Model& model = *c.model;
    const Dataset& data = *c.train_data;
    const int64_t batch = std::min(data.size(), o_.batch_size > 0 ? o_.batch_size : model.traced_batch());

    std::vector<CompressedWeight> weights;
    for (const auto& layer : c.table.layers) {
      const int index = model.find_tensor(layer.weight);
      const at::Tensor& weight = model.tensors().at(static_cast<std::size_t>(index)).value;
      const LayerConfig& config = c.plan.layers.at(layer.name);
      if (!config.compresses()) continue;
      SparsityStructure keep;
      if (auto it = c.encodings.find(layer.name); it != c.encodings.end()) keep = it->second.structure();
      torch::NoGradGuard no_grad;
      // Latent weights continue from an earlier fine-tune, else start from the weights before any projection.
      auto original = c.originals.find(layer.name);
      const bool first = original == c.originals.end();
      if (first) original = c.originals.emplace(layer.name, weight.clone()).first;
      if (auto it = c.latents.find(layer.name); it != c.latents.end())
        weight.copy_(it->second);
      else if (!first)
        weight.copy_(original->second);
      weights.push_back(CompressedWeight{layer, config, weight, keep});
    }
    std::vector<at::Tensor> params = model.parameters();
    for (auto& p : params) p.requires_grad_(true);
    Compressor compressor(std::move(weights), o_.compressor);
    torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(o_.lr).weight_decay(o_.weight_decay));
    std::vector<double> peak_lr = {o_.lr};  // by parameter group
    auto add_group = [&](std::vector<at::Tensor> group, torch::optim::AdamWOptions options) {
      if (group.empty()) return;
      peak_lr.push_back(options.lr());
      optimizer.add_param_group({std::move(group), std::make_unique<torch::optim::AdamWOptions>(options)});
    };
    std::vector<at::Tensor> act_scales;
    if (o_.learn_act_scales) act_scales = learn_activation_scales(model);
    add_group(act_scales, torch::optim::AdamWOptions(o_.act_scale_lr > 0 ? o_.act_scale_lr : o_.lr / 10));
    // No decay: it would pull log-scales toward 0, that is scales toward 1.
    add_group(compressor.scale_parameters(), torch::optim::AdamWOptions(o_.weight_scale_lr).weight_decay(0));
    auto gen = at::detail::createCPUGenerator(c.seed);

    ProgressBar bar(name_, o_.steps, c.progress);
    double smoothed = 0;
    for (int64_t step = 0; step < o_.steps; ++step) {
      const double progress = static_cast<double>(step) / static_cast<double>(o_.steps);
      const double decay = cosine_decay(progress);
      auto& groups = optimizer.param_groups();
      for (std::size_t g = 0; g < groups.size(); ++g)
        static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(peak_lr[g] * decay);
      const at::Tensor idx = torch::randint(data.size(), {batch}, gen);
      const at::Tensor x = data.inputs.index_select(0, idx);
      const at::Tensor y = data.targets.index_select(0, idx);
      at::Tensor teacher;
      if (o_.distill > 0) {
        torch::NoGradGuard no_grad;
        teacher = c.reference->forward(x);
      }
      const double loss =
          compressor
              .step(
                  [&] {
                    at::Tensor logits = model.forward(x);
                    at::Tensor l = task_loss(logits, y);
                    if (o_.distill > 0)
                      l = (1 - o_.distill) * l + o_.distill * distillation_loss(logits, teacher, o_.temperature);
                    l.backward();
                    return l;
                  },
                  optimizer)
              .item<double>();
      if (!act_scales.empty()) {
        torch::NoGradGuard no_grad;
        for (auto& scale : act_scales) scale.clamp_min_(kMinScale);
      }
      if (!std::isfinite(loss))
        throw Error(ErrorKind::kInternal, "loss became " + std::to_string(loss) + " at step " +
                                              std::to_string(step + 1) + "; lower lr" +
                                              (o_.compressor.learn_scales ? " or weight_scale_lr" : "") +
                                              (o_.learn_act_scales ? " or act_scale_lr" : ""));
      smoothed = step == 0 ? loss : 0.95 * smoothed + 0.05 * loss;
      bar.update(step + 1, status(smoothed, compressor));
    }
    bar.finish(status(smoothed, compressor));

    for (auto& [name, e] : compressor.finish()) c.encodings.insert_or_assign(name, std::move(e));
    for (const auto& [name, w] : compressor.latents()) c.latents.insert_or_assign(name, w);
    for (auto& p : params) {
      p.requires_grad_(false);
      p.mutable_grad() = at::Tensor();
    }
    if (o_.learn_act_scales) fix_activation_scales(model);
    round_biases_to_accumulators(c);  // trained on in float: back on the integer accumulator's grid
    c.notes.push_back(name_ + ": " + std::to_string(o_.steps) + " steps of batch " + std::to_string(batch) + " on " +
                      data.name + ", final loss " + std::to_string(smoothed).substr(0, 6));
  }

 private:
  std::string name_;
  FinetuneOptions o_;
};

std::vector<OptionSpec> common_options() {
  return {{"steps", "int", 300, "optimizer steps"},
          {"lr", "number", 1e-4, "peak learning rate (AdamW, cosine to 5%)"},
          {"weight_decay", "number", 0.0, "AdamW weight decay"},
          {"batch_size", "int", 0, "training batch (0: the model's traced batch)"},
          {"distill", "number", 0.0, "weight of distillation from the uncompressed model, in [0, 1]"},
          {"temperature", "number", 2.0, "distillation temperature"},
          {"mask", "string", "fixed", "fixed: keep the first mask; dynamic: recompute N:M masks every step"},
          {"act_scales", "string", "keep", "activation fake-quant scales: keep (as calibrated) or learn (LSQ)"},
          {"act_scale_lr", "number", 0.0, "learning rate of learned activation scales (0: lr / 10)"},
          {"weight_scales", "string", "choose",
           "weight quantization scales: choose (afresh each step, by the plan's scale_method) or learn (LSQ, on "
           "log-scales; uniform quantizers without pow2_scale)"},
          {"weight_scale_lr", "number", 1e-2,
           "learning rate of learned weight log-scales (Adam: about the relative change of a scale per step)"}};
}

FinetuneOptions common_from(const nlohmann::json& o) {
  FinetuneOptions f;
  f.steps = o.at("steps").get<int64_t>();
  f.lr = o.at("lr").get<double>();
  f.weight_decay = o.at("weight_decay").get<double>();
  f.batch_size = o.at("batch_size").get<int64_t>();
  f.distill = o.at("distill").get<double>();
  f.temperature = o.at("temperature").get<double>();
  f.compressor.mask = parse_mask_mode(o.at("mask").get<std::string>());
  const std::string scales = o.at("act_scales").get<std::string>();
  if (scales != "keep" && scales != "learn")
    throw Error(ErrorKind::kInvalidConfig, "act_scales '" + scales + "': expected keep or learn");
  f.learn_act_scales = scales == "learn";
  f.act_scale_lr = o.at("act_scale_lr").get<double>();
  if (f.act_scale_lr < 0) throw Error(ErrorKind::kInvalidConfig, "act_scale_lr must be >= 0");
  const std::string weight_scales = o.at("weight_scales").get<std::string>();
  if (weight_scales != "choose" && weight_scales != "learn")
    throw Error(ErrorKind::kInvalidConfig, "weight_scales '" + weight_scales + "': expected choose or learn");
  f.compressor.learn_scales = weight_scales == "learn";
  f.weight_scale_lr = o.at("weight_scale_lr").get<double>();
  if (!(f.weight_scale_lr > 0)) throw Error(ErrorKind::kInvalidConfig, "weight_scale_lr must be positive");
  if (f.steps < 1) throw Error(ErrorKind::kInvalidConfig, "steps must be at least 1");
  if (!(f.lr > 0)) throw Error(ErrorKind::kInvalidConfig, "lr must be positive");
  if (f.batch_size < 0) throw Error(ErrorKind::kInvalidConfig, "batch_size must be >= 0");
  if (!(f.distill >= 0 && f.distill <= 1)) throw Error(ErrorKind::kInvalidConfig, "distill must be in [0, 1]");
  if (!(f.temperature > 0)) throw Error(ErrorKind::kInvalidConfig, "temperature must be positive");
  return f;
}

}  // namespace

PassRegistry::Entry finetune_ste_pass_entry() {
  return {"finetune.ste",
          "quantization/sparsity-aware fine-tuning: forward with projected weights, straight-through gradient to "
          "latent ones",
          common_options(),
          [](const nlohmann::json& o) { return std::make_unique<FinetunePass>("finetune.ste", common_from(o)); },
          PassTraits{/*learns_from_data=*/true, /*evaluates=*/false}};
}

PassRegistry::Entry finetune_admm_pass_entry() {
  auto options = common_options();
  options.push_back({"admm_steps", "int", 200, "ADMM steps before the hard projection (the rest of steps run STE)"});
  options.push_back({"admm_interval", "int", 10, "steps between Z/U updates"});
  options.push_back({"rho", "number", 1e-3, "initial ADMM penalty"});
  options.push_back({"rho_growth", "number", 1.3, "rho multiplier at each Z/U update"});
  options.push_back({"rho_max", "number", 1.0, "largest rho"});
  return {"finetune.admm",
          "ADMM toward the plan's constraint set (Z = proj(W + U), dual updates, growing rho), then hard projection "
          "and STE",
          options,
          [](const nlohmann::json& o) {
            FinetuneOptions f = common_from(o);
            f.compressor.strategy = Strategy::kAdmm;
            f.compressor.admm_steps = o.at("admm_steps").get<int64_t>();
            f.compressor.admm_interval = o.at("admm_interval").get<int64_t>();
            f.compressor.rho = o.at("rho").get<double>();
            f.compressor.rho_growth = o.at("rho_growth").get<double>();
            f.compressor.rho_max = o.at("rho_max").get<double>();
            validate(f.compressor);
            if (f.compressor.admm_steps > f.steps)
              throw Error(ErrorKind::kInvalidConfig, "admm_steps must be at most steps");
            return std::make_unique<FinetunePass>("finetune.admm", f);
          },
          PassTraits{/*learns_from_data=*/true, /*evaluates=*/false}};
}

}  // namespace adze
