#include "exporters/verify.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "compress/compressed_model.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "data/model_data.h"
#include "exporters/runner.h"
#include "model/tapped_graph.h"

namespace adze {
namespace {

// The rows of a layer output that belong to the first `n` samples of a batch of `batch` (a layer may fold the
// batch into its first dimension, as a transformer's [batch·tokens, features] does).
at::Tensor first_samples(const at::Tensor& t, int64_t n, int64_t batch) {
  if (t.dim() == 0 || t.size(0) % batch != 0) return t;
  return t.slice(0, 0, n * (t.size(0) / batch));
}

// Runs the simulation (with every layer's output tapped) and the runner batch by batch, comparing the layers on
// the way; returns {simulated, exported} outputs.
std::pair<at::Tensor, at::Tensor> run_by_layer(const CompressedModel& m, Runner& runner, const at::Tensor& x,
                                               int64_t batch, bool progress,
                                               std::vector<std::pair<std::string, Agreement>>& layers,
                                               std::vector<std::pair<std::string, Agreement>>& own_layers) {
  std::map<std::string, std::string> layer_of_weight;
  for (const auto& l : m.table.layers)
    if (m.encodings.count(l.name)) layer_of_weight[l.weight] = l.name;
  const std::vector<LayerOutput> taps = layer_outputs(m.model, layer_of_weight);
  std::vector<const torch::jit::Value*> values;
  for (const auto& t : taps) {
    values.push_back(t.value);
    layers.emplace_back(t.key, Agreement{});
    own_layers.emplace_back(t.key, Agreement{});
  }
  const TappedGraph tapped(m.model, values);
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> simulated, exported;
  ProgressBar bar("verify by layer", x.size(0), progress);
  for (int64_t start = 0; start < x.size(0); start += batch) {
    const int64_t n = std::min(batch, x.size(0) - start);
    // Both graphs run exactly the traced batch: pad with zeros, compare the real samples only.
    const at::Tensor chunk = pad_to_batch(x.slice(0, start, start + n), batch);
    const TappedGraph::Result sim = tapped.run(chunk);
    std::map<std::string, at::Tensor> exp_layers, own, sim_layers;
    const at::Tensor exp = runner.run_by_layer(chunk, &exp_layers);
    for (std::size_t i = 0; i < taps.size(); ++i) sim_layers[taps[i].key] = sim.values[i];
    runner.run_by_layer(chunk, &own, &sim_layers);  // each layer from the simulation's outputs before it
    for (std::size_t i = 0; i < taps.size(); ++i) {
      const auto it = exp_layers.find(taps[i].key);
      if (it == exp_layers.end() || !own.count(taps[i].key))
        throw Error(ErrorKind::kInvalidArgument, "the exported model computes no output for layer '" + taps[i].key +
                                                     "': it was not exported from '" + m.model.source() + "'");
      const at::Tensor want = first_samples(sim.values[i], n, batch);
      layers[i].second.add(want, first_samples(it->second, n, batch));
      own_layers[i].second.add(want, first_samples(own.at(taps[i].key), n, batch));
    }
    simulated.push_back(sim.output.slice(0, 0, n));
    exported.push_back(exp.slice(0, 0, n));
    bar.update(start + n);
  }
  bar.finish();
  return {torch::cat(simulated), torch::cat(exported)};
}

}  // namespace

Verification verify(VerifyOptions o) {
  if (!std::isnan(o.min_agreement) && !(o.min_agreement >= 0 && o.min_agreement <= 1))
    throw Error(ErrorKind::kInvalidArgument,
                "--min-agreement " + std::to_string(o.min_agreement) + ": expected a share in [0, 1]");
  if (!(o.min_cosine >= -1 && o.min_cosine <= 1))
    throw Error(ErrorKind::kInvalidArgument, "--min-cosine " + std::to_string(o.min_cosine) + ": expected [-1, 1]");
  const std::string format = format_of(o.exported);
  RunnerOptions options;
  options.ort_optimization = o.ort_optimization;
  options.packed.dynamic_activations = o.activations == "dynamic";
  const std::unique_ptr<Runner> runner = open_runner(o.exported, options);
  // Exact runtimes must agree closely; layers that quantize their inputs on the fly (8 bits per row or tensor)
  // are an approximation of the simulation: on the reference models their layers measure 39-54 dB and flip
  // up to 0.7% of near-tied predictions (docs/runtime.md, "Fidelity of the runtime").
  const nlohmann::json how = runner->describe();
  const bool dynamic = how.is_object() && how.contains("dynamic_layers") && !how["dynamic_layers"].empty();
  if (std::isnan(o.min_agreement)) o.min_agreement = dynamic ? 0.99 : 0.995;
  if (std::isnan(o.min_layer_sqnr)) o.min_layer_sqnr = dynamic ? 30 : 40;
  const int64_t batch = runner->batch() > 0 ? runner->batch() : 256;  // any batch: 256 at a time
  CompressedModel m = load_compressed(o.against, batch);
  InputSpec input = m.model.input();
  const Dataset data = load_data_for_model(o.against + "/model.pt", input, o.data, o.split, o.limit, batch);
  const int64_t n = runner->whole_batches_only() ? data.size() - data.size() % batch : data.size();
  if (n == 0)
    throw Error(ErrorKind::kInvalidArgument,
                "'" + o.data + "' has fewer samples than one batch (" + std::to_string(batch) + ")");
  const at::Tensor x = data.inputs.slice(0, 0, n);

  // Per-layer outputs where the runtime exposes them (the packed runtime); the other formats compare outputs.
  std::vector<std::pair<std::string, Agreement>> layers, own_layers;
  at::Tensor simulated, exported;
  if (runner->exposes_layers()) {
    std::tie(simulated, exported) = run_by_layer(m, *runner, x, batch, o.progress, layers, own_layers);
  } else {
    {
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> outs;
      for (int64_t start = 0; start < n; start += batch)
        outs.push_back(m.model.forward(x.slice(0, start, std::min(n, start + batch))));
      simulated = torch::cat(outs);
    }
    exported = runner->run(x);
  }
  if (exported.numel() != simulated.numel())
    throw Error(ErrorKind::kInvalidArgument, "the exported model gives " + std::to_string(exported.numel()) +
                                                 " outputs, the simulation " + std::to_string(simulated.numel()));
  exported = exported.view_as(simulated);
  const int64_t classes = simulated.size(-1);
  const at::Tensor s = simulated.reshape({-1, classes}), e = exported.reshape({-1, classes});
  Agreement all;
  all.add(s, e);
  const double max_abs = all.max_abs, cosine = all.cosine();
  const double agreement = e.argmax(1).eq(s.argmax(1)).to(torch::kDouble).mean().item<double>();
  Dataset subset = data;
  subset.inputs = x;
  subset.targets = data.targets.slice(0, 0, n);
  // Metrics of outputs already computed (each model ran once), fed to evaluate() batch by batch.
  const auto metrics_of = [&](const at::Tensor& outputs) {
    int64_t offset = 0;
    return evaluate(
        [&](const at::Tensor& b) {
          at::Tensor out = outputs.slice(0, offset, offset + b.size(0));
          offset += b.size(0);
          return out;
        },
        subset, {batch, false});
  };
  Verification v;
  v.format = format;
  v.runtime = runner->describe();
  v.samples = n;
  v.predictions = s.size(0);
  v.max_abs_diff = max_abs;
  v.cosine = cosine;
  v.argmax_agreement = agreement;
  v.simulated = metrics_of(simulated);
  v.exported = metrics_of(exported);
  v.layers = std::move(layers);
  v.own_layers = std::move(own_layers);
  bool layers_pass = true;
  for (const auto& [key, st] : v.own_layers) layers_pass &= st.sqnr_db() >= o.min_layer_sqnr;
  v.pass = agreement >= o.min_agreement && cosine >= o.min_cosine && layers_pass;
  v.options = std::move(o);
  return v;
}

nlohmann::json to_json(const Verification& v) {
  const VerifyOptions& o = v.options;
  const auto db = [](double d) { return std::isinf(d) ? nlohmann::json(nullptr) : nlohmann::json(d); };
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < v.layers.size(); ++i) {
    const auto& [key, st] = v.layers[i];
    const Agreement& own = v.own_layers[i].second;
    layers.push_back({{"layer", key},
                      {"sqnr_db", db(st.sqnr_db())},
                      {"exact", st.noise == 0},
                      {"cosine", st.cosine()},
                      {"max_abs_diff", st.max_abs},
                      {"own_sqnr_db", db(own.sqnr_db())},
                      {"own_exact", own.noise == 0}});
  }
  return {{"exported", o.exported},
          {"format", v.format},
          {"against", o.against},
          {"ort_optimization", v.format == "onnx" ? nlohmann::json(o.ort_optimization) : nlohmann::json(nullptr)},
          {"activations", o.activations},
          {"runtime", v.runtime},
          {"samples", v.samples},
          {"predictions", v.predictions},
          {"max_abs_diff", v.max_abs_diff},
          {"cosine", v.cosine},
          {"argmax_agreement", v.argmax_agreement},
          {"metrics", {{"simulated", to_json(v.simulated)}, {"exported", to_json(v.exported)}}},
          {"layers", layers},
          {"thresholds",
           {{"min_agreement", o.min_agreement}, {"min_cosine", o.min_cosine}, {"min_layer_sqnr_db", o.min_layer_sqnr}}},
          {"pass", v.pass}};
}

}  // namespace adze
