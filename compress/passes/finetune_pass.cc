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

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compress/activation_quant.h"
#include "compress/compressor.h"
#include "compress/decompose.h"
#include "compress/factored_graph.h"
#include "compress/fused_adamw.h"
#include "compress/gradient_average.h"
#include "compress/passes/passes.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/schedule.h"
#include "data/eval.h"

namespace adze {
namespace {

// Where a fine-tuning step's time goes, summed over the steps: the pass reports it (CompressionContext::
// phase_seconds), so that a data-parallel run shows what the ranks repeat and how long they wait for each other.
enum class Phase { kForwardBackward, kNextBatch, kGradientAverage, kProjectAndUpdate, kCount };

class PhaseClock {
 public:
  void start() { last_ = std::chrono::steady_clock::now(); }
  void lap(Phase phase) {
    const auto now = std::chrono::steady_clock::now();
    seconds_[static_cast<int>(phase)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  std::vector<std::pair<std::string, double>> seconds(bool data_parallel) const {
    std::vector<std::pair<std::string, double>> out = {
        {"forward_backward", seconds_[static_cast<int>(Phase::kForwardBackward)]},
        {"next_batch", seconds_[static_cast<int>(Phase::kNextBatch)]}};
    // Sending what backward left unsent, the rest of the all-reduce not hidden behind backward and the next
    // batch, and the copy of the means into the gradients.
    if (data_parallel) out.emplace_back("gradient_average", seconds_[static_cast<int>(Phase::kGradientAverage)]);
    // Projection of the weights, the straight-through gradients and the optimizer's step.
    out.emplace_back("project_and_update", seconds_[static_cast<int>(Phase::kProjectAndUpdate)]);
    return out;
  }

 private:
  std::chrono::steady_clock::time_point last_;
  double seconds_[static_cast<int>(Phase::kCount)] = {};
};

struct FinetuneOptions {
  int64_t steps = 300;
  double lr = 1e-4;
  double weight_decay = 0;
  int64_t batch_size = 0;  ///< 0: the model's traced batch
  double distill = 0;      ///< α
  double temperature = 2;
  MaskMode mask = MaskMode::kFixed;
  bool learn_act_scales = false;
  double act_scale_lr = 0;  ///< 0: lr / 10
  bool learn_weight_scales = false;
  double weight_scale_lr = 1e-2;
  bool train_factors = true;
  ScaleSharing share_scales = ScaleSharing::kAuto;
  // finetune.admm only
  bool admm = false;
  int64_t admm_steps = 200;
  int64_t admm_interval = 10;
  double rho = 1e-3;
  double rho_growth = 1.3;
  double rho_max = 1.0;

  CompressorOptions compressor() const {
    CompressorOptions c;
    c.mask = mask;
    c.learn_scales = learn_weight_scales;
    c.train_factors = train_factors;
    c.share_scales = share_scales;
    if (!admm) return c;
    c.strategy = Strategy::kAdmm;
    c.admm_steps = admm_steps;
    c.admm_interval = admm_interval;
    c.rho = rho;
    c.rho_growth = rho_growth;
    c.rho_max = rho_max;
    return c;
  }
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
    const int64_t ranks = c.sync ? c.sync->size() : 1;
    if (batch % ranks != 0)
      throw Error(ErrorKind::kInvalidArgument, "batch " + std::to_string(batch) + " does not split evenly over " +
                                                   std::to_string(ranks) + " data-parallel ranks");

    std::vector<CompressedWeight> weights;
    FactoredGraph factored(model);  // decomposed layers compute through their factors where they can
    struct Factored {
      Layer layer;
      Encoding decomposition;           // as first projected
      std::vector<at::Tensor> factors;  // the tensors the graph computes with
    };
    std::vector<Factored> decompositions;
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
      if (o_.train_factors && !o_.admm && factored.can_rewrite(layer, config)) {
        // The graph computes through the factors; each trains as a weight of its own (its own grid). ADMM
        // pulls the dense weight toward the rank constraint instead.
        Encoding decomposition = project(weight, layer, config);
        std::vector<at::Tensor> factors = factored.rewrite(layer, decomposition);
        const std::vector<FactorSpec> specs = factor_specs(layer, config);
        for (std::size_t i = 0; i < specs.size(); ++i)  // a float factor trains as a plain weight
          if (specs[i].config.compresses())
            weights.push_back(CompressedWeight{specs[i].layer, specs[i].config, factors[i], {}});
        decompositions.push_back({layer, std::move(decomposition), std::move(factors)});
        continue;
      }
      weights.push_back(CompressedWeight{layer, config, weight, keep});
    }
    std::vector<at::Tensor> params = model.parameters();
    for (auto& p : params) p.requires_grad_(true);
    CompressorOptions compressor_options = o_.compressor();
    compressor_options.sync = c.sync;  // the ranks share out the choice of scales
    Compressor compressor(std::move(weights), compressor_options);
    FusedAdamW optimizer(params, torch::optim::AdamWOptions(o_.lr).weight_decay(o_.weight_decay));
    std::vector<double> peak_lr = {o_.lr};  // by parameter group
    auto add_group = [&](std::vector<at::Tensor> group, torch::optim::AdamWOptions options) {
      if (group.empty()) return;
      peak_lr.push_back(options.lr());
      optimizer.add_param_group({std::move(group), std::make_unique<torch::optim::AdamWOptions>(options)});
    };
    std::vector<at::Tensor> act_scales;
    if (o_.learn_act_scales) act_scales = learn_activation_scales(model);
    add_group(act_scales, torch::optim::AdamWOptions(o_.act_scale_lr > 0 ? o_.act_scale_lr : o_.lr / 10));
    // Decomposed layers train their factors, as the weights do.
    add_group(compressor.factor_parameters(), torch::optim::AdamWOptions(o_.lr).weight_decay(o_.weight_decay));
    // No decay: it would pull log-scales toward 0, that is scales toward 1.
    add_group(compressor.scale_parameters(), torch::optim::AdamWOptions(o_.weight_scale_lr).weight_decay(0));
    auto gen = at::detail::createCPUGenerator(c.seed);

    struct Batch {
      at::Tensor x, y, teacher;
    };
    auto draw = [&] {
      Batch b;
      at::Tensor idx = torch::randint(data.size(), {batch}, gen);  // the same batch on every rank...
      if (c.sync)
        idx = idx.slice(0, c.sync->rank() * batch / ranks, (c.sync->rank() + 1) * batch / ranks);  // ...its share
      b.x = data.inputs.index_select(0, idx);
      b.y = data.targets.index_select(0, idx);
      if (o_.distill > 0) {
        torch::NoGradGuard no_grad;
        b.teacher = c.reference->forward(b.x);
      }
      return b;
    };
    Batch next;
    if (o_.steps > 0) next = draw();

    // Data-parallel: every gradient the optimizer reads, averaged over the ranks; the all-reduce of the last
    // layers' gradients starts during backward.
    std::optional<GradientAverage> average;
    if (c.sync) {
      std::vector<at::Tensor> trained;
      for (auto& group : optimizer.param_groups())
        for (auto& p : group.params()) trained.push_back(p);
      average.emplace(std::move(trained), *c.sync);
    }
    ProgressBar bar(name_, o_.steps, c.progress);
    double smoothed = 0;
    PhaseClock clock;
    for (int64_t step = 0; step < o_.steps; ++step) {
      const double progress = static_cast<double>(step) / static_cast<double>(o_.steps);
      const double decay = cosine_decay(progress);
      auto& groups = optimizer.param_groups();
      for (std::size_t g = 0; g < groups.size(); ++g)
        static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(peak_lr[g] * decay);
      const Batch now = std::move(next);
      clock.start();
      const double loss =
          compressor
              .step(
                  [&] {
                    clock.lap(Phase::kProjectAndUpdate);
                    if (average) average->begin();
                    at::Tensor logits = model.forward(now.x);
                    at::Tensor l = task_loss(logits, now.y);
                    if (o_.distill > 0)
                      l = (1 - o_.distill) * l + o_.distill * distillation_loss(logits, now.teacher, o_.temperature);
                    l.backward();
                    clock.lap(Phase::kForwardBackward);
                    // The next batch (and its teacher outputs) while the ranks average the gradients.
                    if (step + 1 < o_.steps) next = draw();
                    clock.lap(Phase::kNextBatch);
                    if (average) average->finish();
                    clock.lap(Phase::kGradientAverage);
                    return l;
                  },
                  optimizer)
              .item<double>();
      clock.lap(Phase::kProjectAndUpdate);
      if (!act_scales.empty()) {
        torch::NoGradGuard no_grad;
        for (auto& scale : act_scales) scale.clamp_min_(kMinScale);
      }
      if (!std::isfinite(loss))
        throw Error(ErrorKind::kInternal, "loss became " + std::to_string(loss) + " at step " +
                                              std::to_string(step + 1) + "; lower lr" +
                                              (o_.learn_weight_scales ? " or weight_scale_lr" : "") +
                                              (o_.learn_act_scales ? " or act_scale_lr" : ""));
      smoothed = step == 0 ? loss : 0.95 * smoothed + 0.05 * loss;
      bar.update(step + 1, status(smoothed, compressor));
    }
    bar.finish(status(smoothed, compressor));
    c.phase_seconds = clock.seconds(c.sync != nullptr);

    std::map<std::string, Encoding> encodings = compressor.finish();
    std::map<std::string, at::Tensor> latents = compressor.latents();
    for (auto& p : params) {
      p.requires_grad_(false);
      p.mutable_grad() = at::Tensor();
    }
    factored.restore();
    for (auto& [layer, d, tensors] : decompositions) {  // the factors back into their layer's Encoding
      const std::vector<FactorSpec> specs = factor_specs(layer, d.config);
      std::vector<at::Tensor> latent;
      for (std::size_t i = 0; i < specs.size(); ++i) {
        const std::string& factor = specs[i].layer.name;
        if (!specs[i].config.compresses()) {  // a float factor is its own latent and its own encoding
          torch::NoGradGuard no_grad;
          d.factors[i] = project(tensors[i].detach(), specs[i].layer, specs[i].config);
          latent.push_back(tensors[i].detach().clone());
          continue;
        }
        d.factors[i] = std::move(encodings.at(factor));
        latent.push_back(latents.at(factor));
        encodings.erase(factor);
        latents.erase(factor);
      }
      torch::NoGradGuard no_grad;
      latents.emplace(layer.name, compose_weight(d, latent[0], latent[1]));
      const int index = model.find_tensor(layer.weight);
      model.tensors().at(static_cast<std::size_t>(index)).value.copy_(d.decode());
      encodings.emplace(layer.name, std::move(d));
    }
    for (auto& [name, e] : encodings) c.encodings.insert_or_assign(name, std::move(e));
    for (const auto& [name, w] : latents) c.latents.insert_or_assign(name, w);
    if (o_.learn_act_scales) fix_activation_scales(model);
    round_biases_to_accumulators(c);  // trained on in float: back on the integer accumulator's grid
    c.notes.push_back(name_ + ": " + std::to_string(o_.steps) + " steps of batch " + std::to_string(batch) + " on " +
                      data.name + ", final loss " + std::to_string(smoothed).substr(0, 6));
    if (!decompositions.empty())
      c.notes.push_back(name_ + ": " + std::to_string(decompositions.size()) +
                        " decomposed layer(s) computed through their factors while training");
  }

 private:
  std::string name_;
  FinetuneOptions o_;
};

OptionList<FinetuneOptions> common_options() {
  using O = FinetuneOptions;
  return OptionList<O>()
      .add(&O::steps, "steps", "optimizer steps", at_least(1))
      .add(&O::lr, "lr", "peak learning rate (AdamW, cosine to 5%)", above(0))
      .add(&O::weight_decay, "weight_decay", "AdamW weight decay", at_least(0))
      .add(&O::batch_size, "batch_size", "training batch (0: the model's traced batch)", at_least(0))
      .add(&O::distill, "distill", "weight of distillation from the uncompressed model", between(0, 1))
      .add(&O::temperature, "temperature", "distillation temperature", above(0))
      .choose(&O::mask, "mask", "fixed: keep the first mask; dynamic: recompute N:M masks every step",
              {{"fixed", MaskMode::kFixed}, {"dynamic", MaskMode::kDynamic}})
      .choose(&O::learn_act_scales, "act_scales", "activation fake-quant scales: keep (as calibrated) or learn (LSQ)",
              {{"keep", false}, {"learn", true}})
      .add(&O::act_scale_lr, "act_scale_lr", "learning rate of learned activation scales (0: lr / 10)", at_least(0))
      .choose(&O::learn_weight_scales, "weight_scales",
              "weight quantization scales: choose (afresh each step, by the plan's scale_method) or learn (LSQ, on "
              "log-scales; uniform quantizers without pow2_scale)",
              {{"choose", false}, {"learn", true}})
      .add(&O::weight_scale_lr, "weight_scale_lr",
           "learning rate of learned weight log-scales (Adam: about the relative change of a scale per step)", above(0))
      .choose(&O::train_factors, "decomposed",
              "decomposed layers under finetune.ste: factors (the factors themselves train; the weight is their "
              "product) or projection (the dense weight trains through the whole decomposition, redone every step); "
              "finetune.admm always trains the dense weight",
              {{"factors", true}, {"projection", false}})
      .choose(&O::share_scales, "share_scales",
              "data-parallel ranks (--data-parallel): each chooses the weight scales of its share of the channels and "
              "the ranks exchange them, the same scales as one rank's; auto: when the choice is large enough to pay "
              "for the exchange (about a million weights with MSE scales)",
              {{"auto", ScaleSharing::kAuto}, {"always", ScaleSharing::kAlways}, {"never", ScaleSharing::kNever}});
}

}  // namespace

PassRegistry::Entry finetune_ste_pass_entry() {
  return PassRegistry::entry(
      "finetune.ste",
      "quantization/sparsity-aware fine-tuning: forward with projected weights, straight-through gradient to latent "
      "ones",
      common_options(), [](const FinetuneOptions& o) { return std::make_unique<FinetunePass>("finetune.ste", o); },
      PassTraits{/*learns_from_data=*/true, /*evaluates=*/false});
}

PassRegistry::Entry finetune_admm_pass_entry() {
  using O = FinetuneOptions;
  return PassRegistry::entry(
      "finetune.admm",
      "ADMM toward the plan's constraint set (Z = proj(W + U), dual updates, growing rho), then hard projection and "
      "STE",
      common_options()
          .add(&O::admm_steps, "admm_steps", "ADMM steps before the hard projection (the rest of steps run STE)",
               at_least(0))
          .add(&O::admm_interval, "admm_interval", "steps between Z/U updates", at_least(1))
          .add(&O::rho, "rho", "initial ADMM penalty", above(0))
          .add(&O::rho_growth, "rho_growth", "rho multiplier at each Z/U update", at_least(1))
          .add(&O::rho_max, "rho_max", "largest rho (at least rho)", above(0)),
      [](FinetuneOptions o) {
        o.admm = true;
        validate(o.compressor());
        if (o.admm_steps > o.steps) throw Error(ErrorKind::kInvalidConfig, "admm_steps must be at most steps");
        return std::make_unique<FinetunePass>("finetune.admm", o);
      },
      PassTraits{/*learns_from_data=*/true, /*evaluates=*/false});
}

}  // namespace adze
