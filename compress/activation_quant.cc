#include "compress/activation_quant.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "compress/activation_placement.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/tapped_graph.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

struct Tap {
  std::string layer;
  Node* node;         ///< the op that uses the weight
  std::size_t input;  ///< which input of `node` is the activation
  int bits;
  float lo = INFINITY, hi = -INFINITY;  ///< observed range
  double lo_sum = 0, hi_sum = 0;        ///< percentile observer: sums over batches
  std::vector<at::Tensor> samples{};    ///< mse observer: a deterministic subsample of every batch
  int batches = 0;
};

constexpr int64_t kMaxSamples = int64_t{1} << 20;  ///< values kept per tap by the percentile and mse observers

// Every k-th value, so that at most `limit` remain (deterministic).
at::Tensor subsample(const at::Tensor& v, int64_t limit) {
  return v.numel() > limit ? v.slice(0, 0, v.numel(), (v.numel() + limit - 1) / limit) : v;
}

// Asymmetric per-tensor parameters for the range [lo, hi] (widened to hold 0).
std::pair<float, int64_t> affine_params(float lo, float hi, int bits) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  const int64_t qmax = (int64_t{1} << bits) - 1;
  float scale = (hi - lo) / static_cast<float>(qmax);
  if (!(scale > 0.0f)) scale = 1.0f;
  return {scale, std::min<int64_t>(qmax, std::max<int64_t>(0, std::llround(-lo / scale)))};
}

// The mse observer: the range [α·lo, α·hi], α on a grid from 0.30 to 1.00, whose fake-quantization of the
// samples has the least squared error.
void choose_mse_range(Tap& t) {
  const at::Tensor v = torch::cat(t.samples);
  const int64_t qmax = (int64_t{1} << t.bits) - 1;
  double best = INFINITY;
  float best_lo = t.lo, best_hi = t.hi;
  for (int step = 100; step >= 30; --step) {
    const float a = static_cast<float>(step) / 100.0f;
    const auto [scale, zp] = affine_params(a * t.lo, a * t.hi, t.bits);
    const double err = (torch::fake_quantize_per_tensor_affine(v, scale, zp, 0, qmax) - v).pow(2).sum().item<double>();
    if (err < best) {
      best = err;
      best_lo = a * t.lo;
      best_hi = a * t.hi;
    }
  }
  t.lo = best_lo;
  t.hi = best_hi;
  t.samples.clear();
}

bool is_layer_op(const std::string& k) {
  return k == "aten::linear" || k == "aten::_convolution" || k == "aten::convolution" || k == "aten::conv1d" ||
         k == "aten::conv2d" || k == "aten::matmul" || k == "aten::mm" || k == "aten::bmm" || k == "aten::addmm";
}

// Every use of a layer's weight by a linear/conv/matmul op, with the activation input that feeds it.
std::vector<Tap> find_taps(const CompressionContext& c) {
  std::map<std::string, const Layer*> by_weight;
  for (const auto& l : c.table.layers) by_weight[l.weight] = &l;
  std::vector<Tap> taps;
  for (Node* node : c.model->graph().nodes()) {
    const std::string kind = node->kind().toQualString();
    if (!is_layer_op(kind)) continue;
    // Operand positions: weight at 1 for linear/conv; for matmul-like ops either operand, possibly via .t().
    std::vector<std::pair<std::size_t, std::size_t>> candidates;  // (weight input, activation input)
    if (kind == "aten::addmm")
      candidates = {{2, 1}, {1, 2}};
    else if (kind == "aten::matmul" || kind == "aten::mm" || kind == "aten::bmm")
      candidates = {{1, 0}, {0, 1}};
    else
      candidates = {{1, 0}};
    for (auto [w, a] : candidates) {
      const Value* weight = node->input(w);
      if (weight->node()->kind().toQualString() == std::string("aten::t")) weight = weight->node()->input(0);
      const NamedTensor* t = c.model->tensor_of(weight);
      if (!t) continue;
      auto it = by_weight.find(t->name);
      if (it == by_weight.end()) continue;
      const int bits = c.plan.layers.at(it->second->name).act_bits;
      if (bits > 0) taps.push_back(Tap{it->second->name, node, a, bits});
      break;
    }
  }
  return taps;
}

void observe(std::vector<Tap>& taps, const std::vector<at::Tensor>& values, const ActivationObserver& o) {
  for (std::size_t i = 0; i < taps.size(); ++i) {
    at::Tensor v = values[i].detach().to(torch::kFloat).reshape({-1});
    Tap& t = taps[i];
    ++t.batches;
    if (o.method == "percentile") {
      v = subsample(v, kMaxSamples);
      const double q = o.percentile / 100.0;
      t.lo_sum += torch::quantile(v, 1.0 - q).item<double>();
      t.hi_sum += torch::quantile(v, q).item<double>();
      t.lo = static_cast<float>(t.lo_sum / t.batches);
      t.hi = static_cast<float>(t.hi_sum / t.batches);
    } else {
      t.lo = std::min(t.lo, v.min().item<float>());
      t.hi = std::max(t.hi, v.max().item<float>());
      if (o.method == "mse") t.samples.push_back(subsample(v, kMaxSamples / std::max<int64_t>(1, o.batches)).clone());
    }
  }
}

// Name of a tap's "act_scale" or "act_zero_point" tensor: "<layer>.act_scale" ("<layer>.use1.act_scale" for a
// second use). A layer whose weight is a bare parameter (MHA's in_proj_weight) is named after that tensor, and
// a saved TorchScript module cannot hold a tensor under another tensor, so its names go beside it:
// "<layer>_act_scale", "<layer>_use1_act_scale".
std::string act_tensor_name(const Model& model, const std::string& layer, int use, const std::string& what) {
  const std::string sep = model.find_tensor(layer) >= 0 ? "_" : ".";
  return layer + (use ? sep + "use" + std::to_string(use) : "") + sep + what;
}

// True for the names act_tensor_name gives a scale.
bool is_act_scale_name(const std::string& name) {
  const std::string suffix = "act_scale";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const char sep = name[name.size() - suffix.size() - 1];
  return sep == '.' || sep == '_';
}

// Inserts x -> fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 2^b - 1) right after x is computed (so
// that it can serve every later use of x) and returns its output; the caller redirects uses to it.
Value* insert_fake_quant(Model& model, const Tap& t, int index) {
  const int64_t qmax = (int64_t{1} << t.bits) - 1;
  const auto [scale, zp] = affine_params(t.lo, t.hi, t.bits);
  Value* s = model.add_bound_tensor(
      NamedTensor{act_tensor_name(model, t.layer, index, "act_scale"), torch::full({1}, scale), false, {}});
  Value* z = model.add_bound_tensor(NamedTensor{
      act_tensor_name(model, t.layer, index, "act_zero_point"), torch::full({1}, zp, torch::kInt), false, {}});
  torch::jit::Graph& g = model.graph();
  Value* x = t.node->input(t.input);
  torch::jit::WithInsertPoint guard(x->node()->kind() == c10::prim::Param ? *g.nodes().begin() : x->node()->next());
  Value* fq = g.insert(c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine"),
                       {x, s, z, g.insertConstant(int64_t{0}), g.insertConstant(qmax)});
  fq->setType(x->type());
  return fq;
}

constexpr const char* kFakeQuant = "aten::fake_quantize_per_tensor_affine";
constexpr const char* kLearnable = "aten::_fake_quantize_learnable_per_tensor_affine";

// Activation fake-quant nodes of `kind` whose scale is a bound tensor named by act_tensor_name.
std::vector<Node*> activation_fake_quants(const Model& model, const char* kind) {
  std::vector<Node*> found;
  for (Node* n : model.graph().nodes()) {
    if (n->kind().toQualString() != std::string(kind)) continue;
    const NamedTensor* scale = model.tensor_of(n->input(1));
    if (scale && is_act_scale_name(scale->name)) found.push_back(n);
  }
  return found;
}

// Replaces `n` by a node of `kind` with `inputs` (same output type and uses). The caller holds a
// WithInsertPoint at `n`, made before any constant among `inputs`.
void replace_node(torch::jit::Graph& g, Node* n, const char* kind, const std::vector<Value*>& inputs) {
  Value* out = g.insert(
      c10::Symbol::fromQualString(kind),
      c10::ArrayRef<torch::jit::NamedValue>(std::vector<torch::jit::NamedValue>(inputs.begin(), inputs.end())));
  out->setType(n->output()->type());
  n->output()->replaceAllUsesWith(out);
  n->destroy();
}

int index_of(const Model& model, const Value* v) { return model.find_tensor(model.tensor_of(v)->name); }

}  // namespace

std::vector<at::Tensor> learn_activation_scales(Model& model) {
  torch::jit::Graph& g = model.graph();
  std::vector<at::Tensor> scales;
  for (Node* n : activation_fake_quants(model, kFakeQuant)) {
    const int64_t qmin = torch::jit::toIValue(n->input(3))->toInt(), qmax = torch::jit::toIValue(n->input(4))->toInt();
    // LSQ's gradient scale: 1/sqrt(N·Qp), N the activation's elements per sample.
    const auto type = n->input(0)->type()->cast<c10::TensorType>();
    const auto sizes = type ? type->sizes().concrete_sizes() : c10::nullopt;
    int64_t per_sample = 1;
    if (sizes && !sizes->empty()) per_sample = c10::multiply_integers(sizes->begin() + 1, sizes->end());
    const double grad_factor = 1.0 / std::sqrt(static_cast<double>(per_sample) * static_cast<double>(qmax));
    const int zi = index_of(model, n->input(2));
    model.set_tensor(zi, model.tensors()[static_cast<std::size_t>(zi)].value.to(torch::kFloat));
    const int si = index_of(model, n->input(1));
    at::Tensor scale = model.tensors()[static_cast<std::size_t>(si)].value;
    scale.requires_grad_(true);
    scales.push_back(scale);
    torch::jit::WithInsertPoint guard(n);  // the constants go before their use
    replace_node(g, n, kLearnable,
                 {n->input(0), n->input(1), n->input(2), g.insertConstant(qmin), g.insertConstant(qmax),
                  g.insertConstant(grad_factor)});
  }
  model.graph_changed();
  return scales;
}

int fix_activation_scales(Model& model) {
  torch::jit::Graph& g = model.graph();
  int count = 0;
  for (Node* n : activation_fake_quants(model, kLearnable)) {
    const int64_t qmin = torch::jit::toIValue(n->input(3))->toInt(), qmax = torch::jit::toIValue(n->input(4))->toInt();
    torch::NoGradGuard no_grad;
    const int si = index_of(model, n->input(1)), zi = index_of(model, n->input(2));
    const at::Tensor s = model.tensors()[static_cast<std::size_t>(si)].value.detach().clamp_min(kMinScale);
    model.set_tensor(si, s.clone());
    const at::Tensor z = model.tensors()[static_cast<std::size_t>(zi)].value.detach();
    model.set_tensor(zi, z.round().clamp(qmin, qmax).to(torch::kInt));
    torch::jit::WithInsertPoint guard(n);
    replace_node(g, n, kFakeQuant, {n->input(0), n->input(1), n->input(2), n->input(3), n->input(4)});
    ++count;
  }
  torch::jit::EliminateDeadCode(model.graph().block());  // the grad_factor constants
  model.graph_changed();
  return count;
}

AccumulatorBias accumulator_bias(const at::Tensor& bias, const at::Tensor& weight_scale, float input_scale) {
  AccumulatorBias r;
  r.step = (weight_scale.to(torch::kFloat).reshape({-1}).expand({bias.numel()}) * input_scale).contiguous();
  r.codes = (bias.to(torch::kFloat).reshape({-1}) / r.step).round();
  r.fits = torch::isfinite(r.codes).all().item<bool>() && r.codes.abs().max().item<double>() <= 2147483647.0;
  return r;
}

BiasAdd bias_add_of(const Model& model, const Node* matmul) {
  const Value* y = matmul->output();
  if (y->uses().size() != 1) return {};
  const Node* add = y->uses().front().user;
  if (add->kind() != c10::aten::add || add->inputs().size() != 3) return {};
  const auto alpha = torch::jit::toIValue(add->input(2));
  if (!alpha || !alpha->isScalar() || alpha->toScalar().toDouble() != 1.0) return {};
  const Value* b = add->input(add->input(0) == y ? 1 : 0);
  const NamedTensor* t = model.tensor_of(b);
  if (!t || t->value.dim() != 1) return {};
  return {add, b};
}

int round_biases_to_accumulators(CompressionContext& c) {
  std::map<std::string, const Layer*> by_weight;
  for (const auto& l : c.table.layers) by_weight[l.weight] = &l;
  int rounded = 0;
  for (Node* n : c.model->graph().nodes()) {
    const std::string kind = n->kind().toQualString();
    const Value *w = nullptr, *b = nullptr;
    if ((kind == "aten::_convolution" || kind == "aten::linear") && n->inputs().size() >= 3) {
      w = n->input(1);
      b = n->input(2);
    } else if ((kind == "aten::matmul" || kind == "aten::mm") && n->input(1)->node()->kind() == c10::aten::t) {
      w = n->input(1)->node()->input(0);
      b = bias_add_of(*c.model, n).bias;
    }
    if (!w || !b) continue;
    const Node* fq = n->input(0)->node();
    if (fq->kind().toQualString() != std::string(kFakeQuant) || torch::jit::toIValue(fq->input(4))->toInt() != 255)
      continue;
    const NamedTensor* act_scale = c.model->tensor_of(fq->input(1));
    const NamedTensor* weight = c.model->tensor_of(w);
    const NamedTensor* bias = c.model->tensor_of(b);
    if (!act_scale || !weight || !bias) continue;
    const auto layer = by_weight.find(weight->name);
    if (layer == by_weight.end() || layer->second->uses != 1) continue;
    const auto e = c.encodings.find(layer->second->name);
    if (e == c.encodings.end() || !e->second.config.quantized() || !traits_of(e->second.config.quantizer).affine)
      continue;
    const int64_t channels = e->second.channels();
    const int64_t scales = e->second.scale.numel();
    if (bias->value.numel() != channels || (scales != channels && scales != 1)) continue;
    const AccumulatorBias grid = accumulator_bias(bias->value, e->second.scale, act_scale->value.item<float>());
    if (!grid.fits) continue;
    c.model->set_tensor(c.model->find_tensor(bias->name), (grid.codes * grid.step).to(bias->value.scalar_type()));
    ++rounded;
  }
  return rounded;
}

ActivationQuantResult quantize_activations(CompressionContext& c, const ActivationObserver& o) {
  if (o.method != "minmax" && o.method != "percentile" && o.method != "mse")
    throw Error(ErrorKind::kInvalidConfig, "observer '" + o.method + "': expected minmax, percentile or mse");
  std::vector<Tap> taps = find_taps(c);
  const std::size_t layer_taps = taps.size();
  // Integer placement: the operands of the integer ops between quantized layers, each value tapped once.
  std::vector<NodeInput> operands;
  if (o.placement == "integer" && !taps.empty()) {
    std::set<NodeInput> layer_inputs;
    std::map<const Value*, std::size_t> tapped;
    int bits = 0;
    for (std::size_t i = 0; i < taps.size(); ++i) {
      layer_inputs.insert({taps[i].node, taps[i].input});
      tapped.emplace(taps[i].node->input(taps[i].input), i);
      bits = std::max(bits, taps[i].bits);
    }
    operands = integer_operands(c.model->graph(), layer_inputs);
    for (const auto& [node, input] : operands)
      if (tapped.emplace(node->input(input), taps.size()).second)
        taps.push_back(Tap{"between_layers." + std::to_string(taps.size() - layer_taps), node, input, bits});
  }
  ActivationQuantResult result;
  for (const auto& l : c.table.layers)
    if (c.plan.layers.at(l.name).act_bits > 0 && l.kind == LayerKind::kEmbedding) ++result.skipped;
  if (taps.empty()) return result;
  // Calibration reads the training data when there is some: the evaluation split stays unseen.
  const Dataset* data = c.train_data ? c.train_data : c.data;
  if (!data) throw Error(ErrorKind::kInvalidArgument, "activation calibration needs data (--data)");
  torch::NoGradGuard no_grad;
  const int64_t batch = c.model->traced_batch();
  const int64_t batches = std::max<int64_t>(1, std::min(o.batches, (data->size() + batch - 1) / batch));
  ProgressBar bar("calibrate activations", batches, c.progress);
  std::vector<const Value*> values;
  for (const auto& t : taps) values.push_back(t.node->input(t.input));
  const TappedGraph tapped(*c.model, values);
  for (int64_t b = 0; b < batches; ++b) {
    at::Tensor x = data->inputs.slice(0, b * batch, std::min(data->size(), (b + 1) * batch));
    if (x.size(0) < batch) break;  // the graph is traced at `batch`; a short tail would need padding, skip it
    observe(taps, tapped.run(x).values, o);
    bar.update(b + 1);
  }
  bar.finish();
  if (taps.front().batches == 0)
    throw Error(ErrorKind::kInvalidArgument, "activation calibration needs at least " + std::to_string(batch) +
                                                 " samples, the data has " + std::to_string(data->size()));
  if (o.method == "mse")
    for (auto& t : taps) choose_mse_range(t);
  std::map<std::string, int> uses;
  // A value → its first fake-quant and that tap. Taps of one value with the same range share one fake-quant
  // (ResNet's block input feeds a convolution and the downsampling one): one quantization, as integer runtimes
  // need, and ONNX Runtime fuses a ReLU before it only when it is the ReLU's one use.
  std::map<const Value*, std::pair<Value*, const Tap*>> quantized;
  int shared = 0;
  for (std::size_t i = 0; i < taps.size(); ++i) {
    const Tap& t = taps[i];
    const Value* x = t.node->input(t.input);
    const auto first = quantized.find(x);
    Value* fq = nullptr;
    if (first != quantized.end() && first->second.second->lo == t.lo && first->second.second->hi == t.hi &&
        first->second.second->bits == t.bits) {
      fq = first->second.first;
      ++shared;
    } else {
      fq = insert_fake_quant(*c.model, t, uses[t.layer]++);
      quantized.emplace(x, std::make_pair(fq, &t));
    }
    if (i < layer_taps) t.node->replaceInput(t.input, fq);
  }
  for (const auto& [node, input] : operands) node->replaceInput(input, quantized.at(node->input(input)).first);
  c.model->graph_changed();
  round_biases_to_accumulators(c);
  result.taps = static_cast<int>(taps.size()) - shared;
  return result;
}

}  // namespace adze
