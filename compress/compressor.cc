#include "compress/compressor.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "model/frontend.h"

namespace adze {
namespace {

// Where the straight-through gradient may pass: the latent inside the projection's range (`inside`, when the
// caller has it) and kept by its mask.
at::Tensor kept_inside(const Encoding& e, const at::Tensor& latent, at::Tensor inside = {}) {
  if (!inside.defined()) inside = e.representable(latent);
  return e.mask.defined() ? inside.logical_and(e.from_canonical(e.mask)) : inside;
}

}  // namespace

void validate(const CompressorOptions& o) {
  if (o.admm_steps < 0) throw Error(ErrorKind::kInvalidConfig, "admm_steps must be >= 0");
  if (o.admm_interval < 1) throw Error(ErrorKind::kInvalidConfig, "admm_interval must be at least 1");
  if (!(o.rho > 0)) throw Error(ErrorKind::kInvalidConfig, "rho must be positive");
  if (!(o.rho_growth >= 1)) throw Error(ErrorKind::kInvalidConfig, "rho_growth must be >= 1");
  if (!(o.rho_max >= o.rho)) throw Error(ErrorKind::kInvalidConfig, "rho_max must be >= rho");
}

Compressor::Compressor(std::vector<CompressedWeight> weights, CompressorOptions options)
    : options_(options), rho_(options.rho) {
  validate(options_);
  for (auto& w : weights) {
    if (!w.config.compresses()) continue;
    if (!w.weight.defined() || !w.weight.is_floating_point())
      throw Error(ErrorKind::kInvalidArgument, "layer '" + w.layer.name + "': no float weight to compress");
    State s;
    s.w = std::move(w);
    states_.push_back(std::move(s));
  }
  admm_ = options_.strategy == Strategy::kAdmm && options_.admm_steps > 0;
  if (options_.train_factors && options_.strategy == Strategy::kSte) {
    torch::NoGradGuard no_grad;
    for (auto& s : states_) {
      if (!s.w.config.decomposed()) continue;
      s.decomposition = project(s.w.weight.detach(), s.w.layer, s.w.config);
      s.factor_specs = factor_specs(s.w.layer, s.w.config);
      for (const Encoding& f : s.decomposition.factors)
        s.factors.push_back(f.decode().to(s.w.weight.scalar_type()).requires_grad_(true));
    }
  }
  if (admm_) {
    torch::NoGradGuard no_grad;
    for (auto& s : states_) {
      s.z = project_latent(s, s.w.weight, /*choose_scales=*/true).decode().to(s.w.weight.scalar_type());
      s.u = torch::zeros_like(s.w.weight);
    }
  }
  if (options_.learn_scales) init_scales();
}

Compressor Compressor::attach(torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                              const InputSpec& input, const Plan& plan, CompressorOptions options) {
  const Model model = trace_module(module, forward, input, "module");
  const LayerTable table = build_layer_table(model);
  const ResolvedPlan resolved = resolve_plan(plan, table, plan.source);
  const auto parameters = module.named_parameters(/*recurse=*/true);
  std::vector<CompressedWeight> weights;
  std::vector<std::string> act_layers;
  for (const auto& layer : table.layers) {
    const LayerConfig& config = resolved.layers.at(layer.name);
    if (config.act_bits) act_layers.push_back(layer.name);
    const at::Tensor* p = parameters.find(layer.weight);
    if (!p)
      throw Error(ErrorKind::kInternal,
                  "layer '" + layer.name + "': parameter '" + layer.weight + "' not found in the module");
    weights.push_back(CompressedWeight{layer, config, *p, SparsityStructure{}});
  }
  Compressor c(std::move(weights), options);
  c.warnings_ = resolved.warnings;
  if (!act_layers.empty())
    c.warnings_.push_back(
        "act_bits of " + std::to_string(act_layers.size()) +
        " layer(s) ignored: the C++ API compresses weights; activation fake-quant is simulated by adze compress");
  return c;
}

bool Compressor::in_admm_phase() const { return admm_ && steps_ < options_.admm_steps; }

std::vector<std::string> Compressor::layer_names() const {
  std::vector<std::string> names;
  for (const auto& s : states_) names.push_back(s.w.layer.name);
  return names;
}

std::vector<at::Tensor> Compressor::scale_parameters() const {
  std::vector<at::Tensor> scales;
  for (const auto& s : states_)
    if (s.log_scale.defined()) scales.push_back(s.log_scale);
  return scales;
}

std::vector<at::Tensor> Compressor::factor_parameters() const {
  std::vector<at::Tensor> factors;
  for (const auto& s : states_) factors.insert(factors.end(), s.factors.begin(), s.factors.end());
  return factors;
}

std::vector<Encoding> Compressor::project_factors(const State& s) const {
  std::vector<Encoding> projected;
  for (std::size_t i = 0; i < s.factors.size(); ++i)
    projected.push_back(project(s.factors[i].detach(), s.factor_specs[i].layer, s.factor_specs[i].config));
  return projected;
}

void Compressor::begin_factor_step(State& s) {
  std::vector<at::Tensor> decoded, gates;
  {
    torch::NoGradGuard no_grad;
    for (const Encoding& e : project_factors(s)) {
      const at::Tensor& latent = s.factors[decoded.size()];
      decoded.push_back(e.decode().to(latent.scalar_type()));
      gates.push_back(kept_inside(e, latent).to(latent.scalar_type()));
    }
  }
  torch::AutoGradMode record(true);
  std::vector<at::Tensor> through;  // forward: the projection; backward: the gradient, gated, to the latent
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    const at::Tensor gated = s.factors[i] * gates[i];
    through.push_back(gated + (decoded[i] - gated).detach());
  }
  s.product = compose_weight(s.decomposition, through[0], through[1]);
  torch::NoGradGuard no_grad;
  s.w.weight.copy_(s.product.detach());
}

Encoding Compressor::project_latent(State& s, const at::Tensor& w, bool choose_scales, const RowQuantParams& chosen) {
  const bool fixed = options_.mask == MaskMode::kFixed;
  RowQuantParams scales = chosen;
  if (!choose_scales && s.log_scale.defined()) scales = {s.log_scale.detach().exp(), s.zero_point};
  // A channel permutation is searched once (it is slow) and kept in every mode; the mask only when fixed.
  Encoding e = project(w.detach(), s.w.layer, s.w.config,
                       fixed ? s.w.keep : SparsityStructure{{}, s.w.keep.permutation}, scales);
  if (!s.w.keep.permutation.defined()) s.w.keep.permutation = e.permutation;
  if (fixed && !s.w.keep.mask.defined() && e.mask.defined()) s.w.keep.mask = e.mask;
  return e;
}

std::vector<RowQuantParams> Compressor::choose_scales_together() {
  std::vector<RowQuantParams> chosen(states_.size());
  GradientSync* sync = options_.sync.get();
  if (!sync || sync->size() < 2 || options_.share_scales == ScaleSharing::kNever) return chosen;
  struct Share {
    std::size_t state;
    int64_t offset, rows;  // in the exchanged tensor: rows scales, rows zero points, then a flag: a NaN or Inf seen
    int64_t rows_per_channel, begin, end;  // this rank's channels
  };
  std::vector<Share> shares;
  int64_t length = 0, work = 0;  // work: weights times the passes their scale method makes
  const int64_t rank = sync->rank(), ranks = sync->size();
  for (std::size_t i = 0; i < states_.size(); ++i) {
    const State& s = states_[i];
    const LayerConfig& c = s.w.config;
    const bool chooses = s.factors.empty() && !s.log_scale.defined() && c.quantized() &&
                         traits_of(c.quantizer).affine && !c.pow2_scale && !c.decomposed() &&
                         c.granularity != Granularity::kPerTensor && (!c.permute || s.w.keep.permutation.defined());
    if (!chooses) continue;
    const at::Tensor& w = s.w.weight;  // its channels: the rows of to_canonical's [C, K]
    const int64_t channels = w.size(channel_dim(s.w.layer));
    const int64_t per = c.granularity == Granularity::kPerGroup ? w.numel() / channels / c.group_size : 1;
    shares.push_back({i, length, channels * per, per, channels * rank / ranks, channels * (rank + 1) / ranks});
    length += 2 * channels * per + 1;
    work += w.numel() * (c.scale_method == ScaleMethod::kMse ? kMseCandidates : 1);
  }
  // Every rank decides alike: the same layers, configs and shapes.
  const bool worth = options_.share_scales == ScaleSharing::kAlways || work >= CompressorOptions::kShareScalesFrom;
  if (shares.empty() || !worth) return chosen;
  at::Tensor exchanged = torch::zeros({length}, torch::kFloat);  // zeros but for this rank's rows: the sum is exact
  const bool fixed = options_.mask == MaskMode::kFixed;
  for (const Share& sh : shares) {
    State& s = states_[sh.state];
    RowQuantParams mine;
    try {
      mine = choose_channel_scales(s.w.weight, s.w.layer, s.w.config,
                                   fixed ? s.w.keep : SparsityStructure{{}, s.w.keep.permutation}, sh.begin, sh.end);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kInvalidArgument) throw;
      exchanged[sh.offset + 2 * sh.rows] = 1.0f;  // a NaN or Inf in this rank's channels: every rank is told
      continue;
    }
    const int64_t first = sh.begin * sh.rows_per_channel, count = (sh.end - sh.begin) * sh.rows_per_channel;
    exchanged.slice(0, sh.offset + first, sh.offset + first + count).copy_(mine.scale);
    exchanged.slice(0, sh.offset + sh.rows + first, sh.offset + sh.rows + first + count).copy_(mine.zero_point);
  }
  std::vector<at::Tensor> one = {exchanged};
  sync->sum(one);
  for (const Share& sh : shares)  // the same error on every rank, naming the first layer a rank found it in
    if (exchanged[sh.offset + 2 * sh.rows].item<float>() > 0)
      throw Error(ErrorKind::kInvalidArgument,
                  "failed to project layer '" + states_[sh.state].w.layer.name + "': the weight contains NaN or Inf");
  for (const Share& sh : shares)
    chosen[sh.state] = {exchanged.slice(0, sh.offset, sh.offset + sh.rows).clone(),
                        exchanged.slice(0, sh.offset + sh.rows, sh.offset + 2 * sh.rows).to(torch::kInt)};
  return chosen;
}

void Compressor::init_scales() {
  torch::NoGradGuard no_grad;
  for (auto& s : states_) {
    const LayerConfig& c = s.w.config;
    if (!(c.quantized() && traits_of(c.quantizer).affine && !c.pow2_scale && !c.decomposed())) continue;
    const Encoding e = project_latent(s, s.w.weight, /*choose_scales=*/true);
    if (s.log_scale.defined())
      s.log_scale.copy_(e.scale.log());
    else
      s.log_scale = e.scale.log().requires_grad_(true);
    s.zero_point = e.zero_point;
  }
}

void Compressor::scale_gradients() {
  torch::NoGradGuard no_grad;
  for (auto& s : states_) {
    if (!s.log_scale.defined() || !s.w.weight.grad().defined()) continue;
    const Encoding& e = s.projected;
    const at::Tensor w = s.latent.to(torch::kFloat), projected = s.w.weight.to(torch::kFloat);
    const at::Tensor term = s.w.weight.grad().to(torch::kFloat) * (projected - w * s.scaled);
    const at::Tensor g = e.to_encoded_layout(term).reshape({e.scale.size(0), -1}).sum(1);
    if (s.log_scale.grad().defined())
      s.log_scale.mutable_grad().add_(g);
    else
      s.log_scale.mutable_grad() = g;
  }
}

void Compressor::begin_step() {
  if (finished_) throw Error(ErrorKind::kInvalidArgument, "Compressor: step after finish()");
  if (projected_) throw Error(ErrorKind::kInvalidArgument, "Compressor: begin_step() twice without end_step()");
  if (admm_) {
    if (steps_ > 0 && steps_ % options_.admm_interval == 0 && steps_ <= options_.admm_steps) admm_update();
    if (steps_ == options_.admm_steps) harden();
  }
  if (in_admm_phase()) return;
  for (auto& s : states_)
    if (!s.factors.empty()) begin_factor_step(s);
  torch::NoGradGuard no_grad;
  const std::vector<RowQuantParams> chosen = choose_scales_together();
  for (std::size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    if (!s.factors.empty()) continue;
    if (!s.latent.defined()) s.latent = torch::empty_like(s.w.weight);
    s.latent.copy_(s.w.weight);
    Encoding e = project_latent(s, s.latent, false, chosen[i]);
    s.w.weight.copy_(e.decode());
    const at::Tensor inside = e.representable(s.latent), kept = kept_inside(e, s.latent, inside);
    s.gate = (options_.mask == MaskMode::kFixed ? kept : inside).to(s.w.weight.scalar_type());
    if (s.log_scale.defined()) {
      s.scaled = kept.to(torch::kFloat);
      s.projected = std::move(e);
    }
  }
  projected_ = true;
}

void Compressor::end_step() {
  if (finished_) throw Error(ErrorKind::kInvalidArgument, "Compressor: step after finish()");
  torch::NoGradGuard no_grad;
  if (projected_) {
    scale_gradients();
    for (auto& s : states_) {
      if (!s.factors.empty()) {  // the gradient at the product goes on to the factors; the parameter keeps it
        if (s.w.weight.grad().defined()) {
          torch::AutoGradMode record(true);
          torch::autograd::backward({s.product}, {s.w.weight.grad()});
          s.w.weight.mutable_grad().reset();
        }
        s.product = at::Tensor();
        continue;
      }
      s.projected = Encoding{};
      s.scaled = at::Tensor();
      s.w.weight.copy_(s.latent);
      if (s.w.weight.grad().defined()) s.w.weight.mutable_grad().mul_(s.gate);
    }
    projected_ = false;
  } else if (in_admm_phase()) {
    for (auto& s : states_) {
      at::Tensor pull = (s.w.weight - s.z + s.u) * rho_;
      if (s.w.weight.grad().defined())
        s.w.weight.mutable_grad().add_(pull);
      else
        s.w.weight.mutable_grad() = pull;
    }
  } else {
    throw Error(ErrorKind::kInvalidArgument, "Compressor: end_step() without begin_step()");
  }
  ++steps_;
}

at::Tensor Compressor::step(const std::function<at::Tensor()>& closure, torch::optim::Optimizer& optimizer) {
  if (steps_ == 0) {  // factors the optimizer does not hold would never train
    std::set<const void*> held;
    for (const auto& group : optimizer.param_groups())
      for (const auto& p : group.params()) held.insert(p.unsafeGetTensorImpl());
    for (const auto& f : factor_parameters())
      if (!held.count(f.unsafeGetTensorImpl()))
        throw Error(ErrorKind::kInvalidArgument,
                    "Compressor: the optimizer does not hold factor_parameters() (the factors of decomposed layers); "
                    "add them as a parameter group");
  }
  optimizer.zero_grad();
  begin_step();
  at::Tensor loss;
  try {
    loss = closure();
  } catch (...) {
    if (projected_) {  // leave the latent weights in place
      torch::NoGradGuard no_grad;
      for (auto& s : states_) {
        if (s.factors.empty())
          s.w.weight.copy_(s.latent);
        else
          s.product = at::Tensor();
      }
      projected_ = false;
    }
    throw;
  }
  end_step();
  optimizer.step();
  return loss.detach();
}

void Compressor::admm_update() {
  torch::NoGradGuard no_grad;
  for (auto& s : states_) {
    s.z = project_latent(s, s.w.weight + s.u, /*choose_scales=*/true).decode().to(s.w.weight.scalar_type());
    s.u.add_(s.w.weight - s.z);
  }
  rho_ = std::min(rho_ * options_.rho_growth, options_.rho_max);
}

double Compressor::admm_residual() const {
  if (!in_admm_phase()) return 0;
  torch::NoGradGuard no_grad;
  double diff = 0, norm = 0;
  for (const auto& s : states_) {
    diff += (s.w.weight - s.z).pow(2).sum().item<double>();
    norm += s.w.weight.pow(2).sum().item<double>();
  }
  return norm > 0 ? std::sqrt(diff / norm) : 0;
}

void Compressor::harden() {
  // The mask of Π(W) is kept from here on (in fixed mode), and learned scales start from its scales.
  torch::NoGradGuard no_grad;
  for (auto& s : states_) {
    s.w.keep.mask = at::Tensor();
    project_latent(s, s.w.weight, /*choose_scales=*/true);
    s.z = at::Tensor();
    s.u = at::Tensor();
  }
  admm_ = false;
  if (options_.learn_scales) init_scales();
}

std::map<std::string, Encoding> Compressor::finish() {
  if (finished_) throw Error(ErrorKind::kInvalidArgument, "Compressor: finish() twice");
  if (projected_) end_step();
  if (admm_) harden();
  torch::NoGradGuard no_grad;
  std::map<std::string, Encoding> encodings;
  for (auto& s : states_) {
    if (!s.factors.empty()) {  // the factors' projections; the latent weight is their product unprojected
      Encoding e = s.decomposition;
      e.factors = project_factors(s);
      latents_.emplace(s.w.layer.name, compose_weight(e, s.factors[0].detach(), s.factors[1].detach()));
      s.w.weight.copy_(e.decode());
      encodings.emplace(s.w.layer.name, std::move(e));
      continue;
    }
    Encoding e = project_latent(s, s.w.weight);
    latents_.emplace(s.w.layer.name, s.w.weight.clone());
    s.w.weight.copy_(e.decode());
    encodings.emplace(s.w.layer.name, std::move(e));
  }
  finished_ = true;
  return encodings;
}

}  // namespace adze
