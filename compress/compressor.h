// Compressor: projection-aware training from inside a training loop, by straight-through estimation (STE) or
// ADMM. It is the C++ API for libtorch training pipelines, and the engine under the finetune.ste and
// finetune.admm passes.
//
//   auto compressor = adze::Compressor::attach(*net, [&](const at::Tensor& x) { return net->forward(x); },
//                                              {{1, 1, 28, 28}, "float32"}, adze::load_plan("plan.json"));
//   torch::optim::AdamW optimizer(net->parameters(), 1e-4);
//   for (...) compressor.step([&] { auto loss = ...; loss.backward(); return loss; }, optimizer);
//   std::map<std::string, adze::Encoding> encodings = compressor.finish();
//
// STE: the parameter holds the latent float weight W between steps. Before the forward, W is saved and the
// parameter becomes Π(W) (the projection of the plan: N:M mask, then quantization); after the backward, the
// parameter is W again and its gradient (taken at Π(W)) is passed straight through to W where W is
// representable — zero where quantization clips it, and, with a fixed mask, zero on pruned weights. Any
// optimizer then updates W.
//
// ADMM (ADMM-NN, NxMiFormer): for the first `admm_steps` steps the forward uses W itself and the gradient gets
// ρ(W − Z + U), the gradient of ρ/2‖W − Z + U‖²; every `admm_interval` steps Z ← Π(W + U), U ← U + W − Z and
// ρ grows (× rho_growth, up to rho_max). Then the mask is fixed from Π(W) (the hard projection) and the
// remaining steps run STE.
//
// A channel permutation (plan field permute) is searched at the first projection and kept from then on.
//
// Decomposed layers (plan field decompose) under STE train their factors themselves (train_factors, the
// default): the first projection gives the factors, which become latent tensors of their own; before each
// forward each factor is projected onto its own grid (its bits, and for SmartDeal's coefficients powers of two
// and sparsity, recomputed each step) and the parameter becomes their product; after the backward, the
// gradient at the parameter flows through the product to each factor, straight through its projection where
// it is representable. No SVD or ALS runs per step. Add factor_parameters() to the optimizer. Without
// train_factors (and under ADMM) the dense W is latent and Π(W) decomposes it afresh at every step.
//
// Weight scales: by default Π chooses each row's scale afresh at every projection, by the plan's scale_method.
// With learn_scales (LSQ, Esser et al. 2020), a layer with a uniform quantizer (and no pow2_scale) keeps
// the scales of its first projection and trains them: ŵ = s·(clamp(round(W/s) + z) − z), and the gradient
// of the loss to log s is Σ_row G·(ŵ − W·[W inside the range and kept]), the LSQ gradient times s. Training
// log s keeps s positive and makes an optimizer step a relative change. The zero points stay as chosen. Add
// scale_parameters() to the optimizer, in a group of their own (no weight decay).
//
// Data-parallel ranks (CompressorOptions::sync) each train the same latent weights on their share of every
// batch, so every rank would choose the same scales. Instead each rank chooses those of its share of every
// layer's channels (per-channel and per-group scales, chosen afresh each step), and one exchange gives them
// to all: the same numbers, each rank making only its share of the choice (MSE scales try 36 clipping ratios
// per row). The exchange is one more all-reduce per step, which waits for the slower rank, so by default
// (ScaleSharing::kAuto) the ranks share only a choice of at least kShareScalesFrom weight-passes, about a
// million weights with MSE scales (docs/results/ddp-scales-2026-12-01.md: what the exchange and the choice cost).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/decompose.h"
#include "compress/encoding.h"
#include "compress/gradient_sync.h"
#include "compress/plan.h"
#include "model/layer_table.h"
#include "model/model.h"

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace adze {

enum class Strategy { kSte, kAdmm };

enum class MaskMode {
  kFixed,    ///< the N:M / unstructured mask is chosen once (first projection, or given) and kept
  kDynamic,  ///< recomputed from the latent weights at every step (pruned weights keep their gradient)
};

/// Whether data-parallel ranks share out the choice of scales (see above).
enum class ScaleSharing { kAuto, kAlways, kNever };

struct CompressorOptions {
  Strategy strategy = Strategy::kSte;
  MaskMode mask = MaskMode::kFixed;
  int64_t admm_steps = 0;      ///< ADMM: steps before the hard projection; STE after
  int64_t admm_interval = 10;  ///< ADMM: steps between Z/U updates
  double rho = 1e-3;           ///< ADMM: initial penalty ρ
  double rho_growth = 1.3;     ///< ADMM: ρ ← min(ρ·rho_growth, rho_max) at each update
  double rho_max = 1.0;
  bool learn_scales = false;  ///< STE: weight scales train (LSQ, see above); ADMM: from the hard projection on
  bool train_factors = true;  ///< STE: decomposed layers train their factors (see above)
  /// Data-parallel ranks that may share out the choice of scales (see above); null: this process chooses all.
  std::shared_ptr<GradientSync> sync;
  ScaleSharing share_scales = ScaleSharing::kAuto;
  /// kAuto shares when the weights whose scales are chosen, each counted once per pass its scale method makes
  /// (MSE: kMseCandidates, minmax and percentile: 1), number at least this many.
  static constexpr int64_t kShareScalesFrom = int64_t{32} << 20;
};

/// Error(kInvalidConfig) naming the option when the options cannot work (ADMM interval < 1, ρ ≤ 0, ...).
void validate(const CompressorOptions& options);

/// One weight under compression.
struct CompressedWeight {
  Layer layer;
  LayerConfig config;
  at::Tensor weight;       ///< the tensor the model's forward reads, edited in place (a leaf parameter)
  SparsityStructure keep;  ///< optional: keep this mask and permutation (from an earlier one-shot step)
};

class Compressor {
 public:
  /// Weights whose config neither quantizes nor sparsifies are ignored.
  explicit Compressor(std::vector<CompressedWeight> weights, CompressorOptions options = {});

  /// Attaches a plan to a C++ module: traces `forward` once on a sample `input` to find the layers, resolves
  /// the plan against them (Error(kInvalidConfig) naming the layer and field, as adze compress), and compresses
  /// the module's own parameters in place. Activation bits in the plan are not simulated here (the module's
  /// forward is the user's); warnings() says so when a layer asks for them.
  static Compressor attach(torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                           const InputSpec& input, const Plan& plan, CompressorOptions options = {});

  /// One training step, one call: optimizer.zero_grad(), begin_step(), closure() (forward and backward,
  /// returning the loss), end_step(), optimizer.step(). Returns the loss, detached.
  at::Tensor step(const std::function<at::Tensor()>& closure, torch::optim::Optimizer& optimizer);
  /// The halves of step(), for loops that need their own control (gradient clipping, accumulation):
  /// call begin_step() before the forward and end_step() after the backward, before the optimizer step.
  void begin_step();
  void end_step();

  /// The hard projection: every weight becomes Π(W) for good. Returns the Encodings by layer name; further
  /// steps are an error.
  std::map<std::string, Encoding> finish();
  /// After finish(): the latent weights W it projected, by layer name (a later fine-tune continues from them).
  const std::map<std::string, at::Tensor>& latents() const { return latents_; }

  int64_t steps() const { return steps_; }
  bool in_admm_phase() const;
  double rho() const { return rho_; }
  /// ‖W − Z‖ / ‖W‖ over all weights since the last Z update (ADMM phase), 0 otherwise.
  double admm_residual() const;
  std::vector<std::string> layer_names() const;
  /// With learn_scales: the log-scales that train, float32 [rows of the quantization grid], one tensor per
  /// layer with a uniform quantizer (no pow2_scale); leaves that require grad. Empty otherwise.
  std::vector<at::Tensor> scale_parameters() const;
  /// With train_factors: the latent factors of every decomposed layer, in their own layouts; leaves that
  /// require grad. Empty otherwise.
  std::vector<at::Tensor> factor_parameters() const;
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct State {
    CompressedWeight w;
    at::Tensor latent;                 ///< W, saved while the parameter holds Π(W)
    at::Tensor gate;                   ///< where the straight-through gradient passes (weight layout, float 0/1)
    at::Tensor z, u;                   ///< ADMM
    at::Tensor log_scale, zero_point;  ///< learned scales (undefined when the layer's are chosen)
    Encoding projected;                ///< Π(W) of the current step, while the parameter holds it
    at::Tensor scaled;                 ///< then: float 0/1, where W is inside the range and kept (weight layout)
    // train_factors: the decomposition's layout (factors as first projected), the latent factors and their
    // layers, and while the parameter holds their product, that product with its autograd graph.
    Encoding decomposition;
    std::vector<at::Tensor> factors;
    std::vector<FactorSpec> factor_specs;
    at::Tensor product;
  };
  /// The factors' projections, each decoded in its own layout, with gates where their gradient passes.
  std::vector<Encoding> project_factors(const State& s) const;
  void begin_factor_step(State& s);
  /// Π(w); with the layer's learned scales unless `choose_scales`, or with `chosen` ones when given.
  Encoding project_latent(State& s, const at::Tensor& w, bool choose_scales = false, const RowQuantParams& chosen = {});
  /// With a sync of two ranks or more: by state, the scales of the layers whose scales Π chooses per channel
  /// or group, each rank choosing its share of the channels; undefined elsewhere.
  std::vector<RowQuantParams> choose_scales_together();
  /// (Re)starts the learned scales from those Π(W) chooses.
  void init_scales();
  /// The gradient of the loss to each learned log-scale, from the gradient at Π(W); before the gate.
  void scale_gradients();
  void admm_update();
  void harden();

  std::vector<State> states_;
  CompressorOptions options_;
  int64_t steps_ = 0;
  double rho_ = 0;
  bool admm_ = false;
  bool projected_ = false;  ///< between begin_step and end_step in STE
  bool finished_ = false;
  std::vector<std::string> warnings_;
  std::map<std::string, at::Tensor> latents_;
};

}  // namespace adze
