#include "search/sensitivity.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "compress/activation_quant.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/progress.h"
#include "model/model.h"
#include "search/swapped.h"

namespace adze {

namespace {

// The fields a table's options differ in (the rest is the space's base config, part of the cache key).
bool same_weight_config(const LayerConfig& a, const LayerConfig& b) {
  return a.weight_bits == b.weight_bits && a.nm == b.nm && a.sparsity == b.sparsity && a.decompose == b.decompose &&
         a.rank == b.rank && a.rank_ratio == b.rank_ratio && a.blocks == b.blocks && a.basis == b.basis;
}

// Tr(∂²L/∂W²) of every layer's weight at once: for Rademacher v, vᵀHv = v · ∂(g · v)/∂W with g = ∂L/∂W taken
// with create_graph; the mean over `probes`.
std::vector<double> hessian_traces(Model& model, const LayerTable& table, const Dataset& data,
                                   const SensitivityOptions& o, ProgressBar& bar, int64_t& done) {
  std::vector<at::Tensor> weights;
  Swapped swapped(model);
  for (const Layer& l : table.layers) {
    const int i = model.find_tensor(l.weight);
    weights.push_back(model.tensors()[static_cast<std::size_t>(i)].value.detach().clone().requires_grad_(true));
    swapped.set(i, weights.back());
  }
  std::vector<double> trace(weights.size(), 0.0);
  torch::AutoGradMode grad(true);
  const int64_t n = std::min(data.size(), o.hessian_samples);
  const at::Tensor loss = task_loss(model.forward(data.inputs.slice(0, 0, n)), data.targets.slice(0, 0, n));
  const std::vector<at::Tensor> grads = torch::autograd::grad({loss}, weights, {}, true, true);
  auto gen = at::detail::createCPUGenerator(o.seed);
  for (int p = 0; p < o.hessian_probes; ++p) {
    std::vector<at::Tensor> v;
    at::Tensor gv = torch::zeros({});
    for (std::size_t k = 0; k < weights.size(); ++k) {
      v.push_back(at::randint(0, 2, weights[k].sizes(), gen, torch::kFloat) * 2 - 1);
      gv = gv + (grads[k] * v[k]).sum();
    }
    const std::vector<at::Tensor> hv = torch::autograd::grad({gv}, weights, {}, true, false);
    for (std::size_t k = 0; k < weights.size(); ++k) trace[k] += (hv[k] * v[k]).sum().item<double>() / o.hessian_probes;
    bar.update(++done);
  }
  return trace;
}

// The model with only `layer`'s input activation fake-quantized at `bits` (calibrated by min-max on `data`), on
// `data`: a copy of the model gets the fake-quant, the model itself is untouched.
Metrics with_quantized_input(const Model& model, const LayerTable& table, const Layer& layer, int bits,
                             const Dataset& data, const EvalOptions& eval) {
  Model copy = model.clone();
  CompressionContext c;
  c.model = &copy;
  c.table = table;
  for (const Layer& l : table.layers) c.plan.layers[l.name] = LayerConfig{};
  c.plan.layers[layer.name].act_bits = bits;
  c.train_data = &data;
  quantize_activations(c, ActivationObserver{"minmax", 99.99, 8, "inputs"});  // the input alone
  return evaluate(copy, data, eval);
}

}  // namespace

double predicted_loss_increase(const OptionImpact& o) { return std::max({0.0, o.loss_delta, 0.5 * o.hessian_proxy}); }

const OptionImpact* SensitivityTable::find(const std::string& layer, const LayerConfig& config) const {
  for (const auto& l : layers)
    if (l.layer == layer)
      for (const auto& o : l.options)
        if (same_weight_config(o.config, config) && o.config.act_bits == config.act_bits) return &o;
  return nullptr;
}

SensitivityTable measure_sensitivity(Model& model, const LayerTable& table, const Dataset& data,
                                     const std::vector<LayerOptions>& space, const SensitivityOptions& o) {
  if (space.size() != table.layers.size())
    throw Error(ErrorKind::kInternal, "sensitivity: the search space does not match the layer table");
  SensitivityTable result;
  const EvalOptions eval{o.batch, false};
  result.base = evaluate(model, data, eval);
  int64_t total = o.hessian_probes, done = 0;
  for (const auto& s : space) total += static_cast<int64_t>(s.configs.size());
  ProgressBar bar("sensitivity", total, o.progress);
  std::vector<double> traces(table.layers.size(), 0.0);
  if (o.hessian_probes > 0) traces = hessian_traces(model, table, data, o, bar, done);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < table.layers.size(); ++i) {
    const Layer& layer = table.layers[i];
    const int index = model.find_tensor(layer.weight);
    const at::Tensor original = model.tensors()[static_cast<std::size_t>(index)].value;
    LayerSensitivity ls{layer.name, layer.params, traces[i], {}};
    std::vector<OptionImpact> weight_only;  // one per weight config
    std::map<int, Metrics> activations;     // by act_bits: this layer's input fake-quantized alone
    for (const LayerConfig& config : space[i].configs) {
      auto w = std::find_if(weight_only.begin(), weight_only.end(),
                            [&](const OptionImpact& x) { return same_weight_config(x.config, config); });
      if (w == weight_only.end()) {
        OptionImpact impact{config, config_label(config)};
        const at::Tensor decoded = project(original, layer, config).decode().to(original.scalar_type());
        impact.weight_error = (decoded - original).pow(2).sum().item<double>();
        impact.hessian_proxy =
            std::abs(traces[i]) / static_cast<double>(std::max<int64_t>(1, layer.params)) * impact.weight_error;
        Swapped swapped(model);
        swapped.set(index, decoded);
        const Metrics m = evaluate(model, data, eval);
        impact.loss_delta = m.cross_entropy - result.base.cross_entropy;
        impact.top1_delta = m.top1 - result.base.top1;
        w = weight_only.insert(weight_only.end(), impact);
      }
      OptionImpact impact = *w;
      impact.config = config;
      impact.label = config_label(config);
      if (config.act_bits > 0 && layer.kind != LayerKind::kEmbedding) {
        if (!activations.count(config.act_bits))
          activations[config.act_bits] = with_quantized_input(model, table, layer, config.act_bits, data, eval);
        const Metrics& a = activations.at(config.act_bits);
        impact.loss_delta += a.cross_entropy - result.base.cross_entropy;
        impact.top1_delta += a.top1 - result.base.top1;
      }
      ls.options.push_back(std::move(impact));
      bar.update(++done);
    }
    result.layers.push_back(std::move(ls));
  }
  bar.finish();
  return result;
}

nlohmann::json to_json(const SensitivityTable& t) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : t.layers) {
    nlohmann::json options = nlohmann::json::array();
    for (const auto& o : l.options) {
      nlohmann::json option = {{"label", o.label},
                               {"weight_bits", o.config.weight_bits},
                               {"nm", o.config.nm.to_string()},
                               {"act_bits", o.config.act_bits},
                               {"loss_delta", o.loss_delta},
                               {"top1_delta", o.top1_delta},
                               {"weight_error", o.weight_error},
                               {"hessian_proxy", o.hessian_proxy}};
      if (o.config.decomposed()) option["config"] = to_json(o.config);  // only then: older tables read as before
      options.push_back(std::move(option));
    }
    layers.push_back(
        {{"layer", l.layer}, {"params", l.params}, {"hessian_trace", l.hessian_trace}, {"options", options}});
  }
  return {{"format", "adze.sensitivity.v1"}, {"key", t.key}, {"base", to_json(t.base)}, {"layers", layers}};
}

SensitivityTable sensitivity_from_json(const nlohmann::json& j, const std::string& where) {
  SensitivityTable t;
  try {
    if (j.at("format") != "adze.sensitivity.v1") throw Error(ErrorKind::kInvalidConfig, "format");
    t.key = j.at("key").get<std::string>();
    t.base.top1 = j.at("base").at("top1").get<double>();
    t.base.cross_entropy = j.at("base").at("cross_entropy").get<double>();
    t.base.samples = j.at("base").at("samples").get<int64_t>();
    t.base.predictions = j.at("base").at("predictions").get<int64_t>();
    t.base.task =
        j.at("base").at("task") == to_string(Task::kLanguageModel) ? Task::kLanguageModel : Task::kClassification;
    for (const auto& l : j.at("layers")) {
      LayerSensitivity ls{
          l.at("layer").get<std::string>(), l.at("params").get<int64_t>(), l.at("hessian_trace").get<double>(), {}};
      for (const auto& o : l.at("options")) {
        OptionImpact x;
        x.config.weight_bits = o.at("weight_bits").get<int>();
        x.config.nm = NMPattern::parse(o.at("nm").get<std::string>());
        x.config.act_bits = o.at("act_bits").get<int>();
        if (o.contains("config"))  // a decomposed option: its whole config, as plans write it
          x.config = parse_plan(nlohmann::ordered_json{{"defaults", o.at("config")}}, where).defaults;
        x.label = o.at("label").get<std::string>();
        x.loss_delta = o.at("loss_delta").get<double>();
        x.top1_delta = o.at("top1_delta").get<double>();
        x.weight_error = o.at("weight_error").get<double>();
        x.hessian_proxy = o.at("hessian_proxy").get<double>();
        ls.options.push_back(std::move(x));
      }
      t.layers.push_back(std::move(ls));
    }
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidConfig, "sensitivity table '" + where + "' is malformed: " + first_line_of(e));
  }
  return t;
}

SensitivityTable cached_sensitivity(Model& model, const LayerTable& table, const Dataset& data,
                                    const std::vector<LayerOptions>& space, const SensitivityOptions& o,
                                    const std::string& identity, bool refresh, bool* from_cache) {
  ContentHash key;
  key.add(identity);
  for (const auto& s : space)
    for (const auto& c : s.configs)
      key.add(s.layer + ":" + config_label(c) + ":" + std::to_string(static_cast<int>(c.scale_method)));
  key.add("adze.sensitivity.v2");  // v2: activation bits simulated
  key.add(std::to_string(o.batch) + "|" + std::to_string(o.hessian_probes) + "|" + std::to_string(o.hessian_samples) +
          "|" + std::to_string(o.seed));
  const std::string path = sensitivity_cache_path(key.hex());
  if (from_cache) *from_cache = false;
  if (!refresh && std::filesystem::exists(path)) {
    try {
      SensitivityTable t = sensitivity_from_json(nlohmann::json::parse(read_file_text(path)), path);
      if (t.key == key.hex()) {
        if (from_cache) *from_cache = true;
        return t;
      }
    } catch (const std::exception&) {
      // An unreadable cache entry is measured again.
    }
  }
  SensitivityTable t = measure_sensitivity(model, table, data, space, o);
  t.key = key.hex();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomically(path, to_json(t).dump(1) + "\n");
  return t;
}

std::string sensitivity_cache_path(const std::string& key) { return cache_dir("sensitivity") + "/" + key + ".json"; }

std::string sensitivity_svg(const SensitivityTable& t) {
  std::vector<std::string> labels;
  for (const auto& l : t.layers)
    for (const auto& o : l.options)
      if (std::find(labels.begin(), labels.end(), o.label) == labels.end()) labels.push_back(o.label);
  const int cell_w = 64, cell_h = 22, left = 170, top = 70, bar_w = 120;
  const int width = left + cell_w * static_cast<int>(labels.size()) + bar_w + 40;
  const int height = top + cell_h * static_cast<int>(t.layers.size()) + 50;
  double max_loss = 1e-9, max_trace = 1e-30;
  for (const auto& l : t.layers) {
    max_trace = std::max(max_trace, std::abs(l.hessian_trace));
    for (const auto& o : l.options) max_loss = std::max(max_loss, o.loss_delta);
  }
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"10\" y=\"20\" font-size=\"14\">Loss increase with one layer compressed (nats, log colour), and "
       "Hessian trace</text>\n"
    << "<text x=\"10\" y=\"38\" fill=\"#555\">baseline: cross-entropy " << t.base.cross_entropy << ", top-1 "
    << t.base.top1 * 100 << "% on " << t.base.samples << " samples</text>\n";
  for (std::size_t c = 0; c < labels.size(); ++c)
    s << "<text x=\"" << left + cell_w * static_cast<int>(c) + cell_w / 2 << "\" y=\"" << top - 8
      << "\" text-anchor=\"middle\">" << labels[c] << "</text>\n";
  s << "<text x=\"" << left + cell_w * static_cast<int>(labels.size()) + 10 << "\" y=\"" << top - 8
    << "\">Tr(H)</text>\n";
  for (std::size_t r = 0; r < t.layers.size(); ++r) {
    const auto& l = t.layers[r];
    const int y = top + cell_h * static_cast<int>(r);
    s << "<text x=\"" << left - 8 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\">" << l.layer << "</text>\n";
    for (std::size_t c = 0; c < labels.size(); ++c) {
      const auto it =
          std::find_if(l.options.begin(), l.options.end(), [&](const OptionImpact& o) { return o.label == labels[c]; });
      const int x = left + cell_w * static_cast<int>(c);
      if (it == l.options.end()) {
        s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell_w - 2 << "\" height=\"" << cell_h - 2
          << "\" fill=\"#eee\"/>\n";
        continue;
      }
      // log scale from 1e-4 nats (white) to the largest delta (dark red)
      const double v = std::max(it->loss_delta, 1e-4);
      const double f = std::clamp(std::log(v / 1e-4) / std::log(std::max(max_loss, 2e-4) / 1e-4), 0.0, 1.0);
      const int g = static_cast<int>(255 * (1 - f)), red = static_cast<int>(255 - 80 * f);
      s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell_w - 2 << "\" height=\"" << cell_h - 2
        << "\" fill=\"rgb(" << red << "," << g << "," << g << ")\"><title>" << l.layer << " " << it->label << ": loss +"
        << it->loss_delta << ", top-1 " << it->top1_delta * 100 << " points</title></rect>\n"
        << "<text x=\"" << x + cell_w / 2 - 1 << "\" y=\"" << y + 15 << "\" text-anchor=\"middle\" fill=\""
        << (f > 0.6 ? "white" : "black") << "\">" << (it->loss_delta < 0.001 ? 0.0 : it->loss_delta) << "</text>\n";
    }
    const int bx = left + cell_w * static_cast<int>(labels.size()) + 10;
    const double bw = (bar_w - 10) * std::abs(l.hessian_trace) / max_trace;
    s << "<rect x=\"" << bx << "\" y=\"" << y + 4 << "\" width=\"" << bw << "\" height=\"" << cell_h - 10
      << "\" fill=\"#4a78b5\"><title>Tr(H) = " << l.hessian_trace << "</title></rect>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace adze
