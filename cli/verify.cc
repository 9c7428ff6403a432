// adze verify EXPORTED --against COMPRESSED_DIR --data SPEC: runs the exported model in its real runtime and
// the simulation side by side on the same data, and reports how far apart they are.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compress/compressed_model.h"
#include "compress/eval.h"
#include "compress/tapped_graph.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/table.h"
#include "exporters/agreement.h"
#include "exporters/runner.h"

namespace adze::cli {
namespace {

struct VerifyOptions {
  std::string exported, against, data, split = "test";
  int64_t limit = 0;
  // NaN: the default, which depends on whether layers quantize their inputs on the fly (set in run_verify).
  double min_agreement = NAN, min_cosine = 0.999, min_layer_sqnr = NAN;
  std::string optimization = "all", activations = "dynamic";
  bool json = false;
};


// The rows of a layer output that belong to the first `n` samples of a batch of `batch` (a layer may fold the
// batch into its first dimension, as a transformer's [batch·tokens, features] does).
at::Tensor first_samples(const at::Tensor& t, int64_t n, int64_t batch) {
  if (t.dim() == 0 || t.size(0) % batch != 0) return t;
  return t.slice(0, 0, n * (t.size(0) / batch));
}

// Runs the simulation (with every layer's output tapped) and the runner batch by batch, comparing the layers on
// the way; returns {simulated, exported} outputs.
std::pair<at::Tensor, at::Tensor> run_by_layer(const CompressedModel& m, Runner& runner,
                                                      const at::Tensor& x, int64_t batch, bool progress,
                                                      std::vector<std::pair<std::string, Agreement>>& layers) {
  std::map<std::string, std::string> layer_of_weight;
  for (const auto& l : m.table.layers)
    if (m.encodings.count(l.name)) layer_of_weight[l.weight] = l.name;
  const std::vector<LayerOutput> taps = layer_outputs(m.model, layer_of_weight);
  std::vector<const torch::jit::Value*> values;
  for (const auto& t : taps) {
    values.push_back(t.value);
    layers.emplace_back(t.key, Agreement{});
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
    std::map<std::string, at::Tensor> exp_layers;
    const at::Tensor exp = runner.run_by_layer(chunk, &exp_layers);
    for (std::size_t i = 0; i < taps.size(); ++i) {
      const auto it = exp_layers.find(taps[i].key);
      if (it == exp_layers.end())
        throw Error(ErrorKind::kInvalidArgument, "the exported model computes no output for layer '" + taps[i].key +
                                                     "': it was not exported from '" + m.model.source() + "'");
      layers[i].second.add(first_samples(sim.values[i], n, batch), first_samples(it->second, n, batch));
    }
    simulated.push_back(sim.output.slice(0, 0, n));
    exported.push_back(exp.slice(0, 0, n));
    bar.update(start + n);
  }
  bar.finish();
  return {torch::cat(simulated), torch::cat(exported)};
}

std::string decibels(double db) { return std::isinf(db) ? "exact" : fixed(db, 1) + " dB"; }

void run_verify(VerifyOptions o) {
  if (!std::isnan(o.min_agreement) && !(o.min_agreement >= 0 && o.min_agreement <= 1))
    throw Error(ErrorKind::kInvalidArgument,
                "--min-agreement " + std::to_string(o.min_agreement) + ": expected a share in [0, 1]");
  if (!(o.min_cosine >= -1 && o.min_cosine <= 1))
    throw Error(ErrorKind::kInvalidArgument, "--min-cosine " + std::to_string(o.min_cosine) + ": expected [-1, 1]");
  const std::string format = format_of(o.exported);
  RunnerOptions options;
  options.ort_optimization = o.optimization;
  options.packed.dynamic_activations = o.activations == "dynamic";
  const std::unique_ptr<Runner> runner = open_runner(o.exported, options);
  // Exact runtimes must agree closely; layers that quantize their inputs on the fly (8 bits per row or tensor)
  // are an approximation of the simulation: on the reference models their layers measure 39-54 dB and flip
  // up to 0.7% of near-tied predictions (README, "Fidelity of the runtime").
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
  std::vector<std::pair<std::string, Agreement>> layers;
  at::Tensor simulated, exported;
  if (runner->exposes_layers()) {
    std::tie(simulated, exported) = run_by_layer(m, *runner, x, batch, show_progress(o.json), layers);
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
  const Metrics sim = metrics_of(simulated), exp = metrics_of(exported);
  nlohmann::json layer_json = nlohmann::json::array();
  bool layers_pass = true;
  for (const auto& [key, st] : layers) {
    layers_pass &= st.sqnr_db() >= o.min_layer_sqnr;
    layer_json.push_back(
        {{"layer", key},
         {"sqnr_db", std::isinf(st.sqnr_db()) ? nlohmann::json(nullptr) : nlohmann::json(st.sqnr_db())},
         {"exact", st.noise == 0},
         {"cosine", st.cosine()},
         {"max_abs_diff", st.max_abs}});
  }
  const bool pass = agreement >= o.min_agreement && cosine >= o.min_cosine && layers_pass;
  nlohmann::json report = {
      {"exported", o.exported},
      {"format", format},
      {"against", o.against},
      {"ort_optimization", format == "onnx" ? nlohmann::json(o.optimization) : nlohmann::json(nullptr)},
      {"activations", o.activations},
      {"runtime", runner->describe()},
      {"samples", n},
      {"predictions", s.size(0)},
      {"max_abs_diff", max_abs},
      {"cosine", cosine},
      {"argmax_agreement", agreement},
      {"metrics", {{"simulated", to_json(sim)}, {"exported", to_json(exp)}}},
      {"layers", layer_json},
      {"thresholds",
       {{"min_agreement", o.min_agreement}, {"min_cosine", o.min_cosine}, {"min_layer_sqnr_db", o.min_layer_sqnr}}},
      {"pass", pass}};
  if (o.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    if (!layers.empty()) {
      Table l;
      l.add_column("layer output");
      l.add_column("SQNR", Table::Align::kRight);
      l.add_column("cosine", Table::Align::kRight);
      l.add_column("max |diff|", Table::Align::kRight);
      for (const auto& [key, st] : layers)
        l.add_row({key,
                   decibels(st.sqnr_db()) +
                       (st.sqnr_db() < o.min_layer_sqnr ? " (< " + decibels(o.min_layer_sqnr) + ")" : ""),
                   fixed(st.cosine(), 6), fixed(st.max_abs, 6)});
      l.print(std::cout);
      std::cout << "\n";
    }
    Table t;
    t.add_column("measure");
    t.add_column("value", Table::Align::kRight);
    t.add_column("threshold", Table::Align::kRight);
    t.add_row({"samples (" + format + ")", std::to_string(n), ""});
    t.add_row({"max |exported - simulated|", fixed(max_abs, 6), ""});
    t.add_row({"cosine similarity", fixed(cosine, 6), ">= " + fixed(o.min_cosine, 4)});
    t.add_row({"argmax agreement", percent(agreement, 2), ">= " + percent(o.min_agreement, 2)});
    t.add_row({"top-1 simulated / exported", percent(sim.top1, 2) + " / " + percent(exp.top1, 2), ""});
    t.print(std::cout);
    std::cout << (pass ? "verified" : "NOT verified: a threshold is missed") << "\n";
  }
  if (!pass) throw CheckFailed();
}

}  // namespace

void setup_verify(CLI::App& app) {
  auto o = std::make_shared<VerifyOptions>();
  auto* sub =
      app.add_subcommand("verify", "Run an exported model in its real runtime against the simulation it came from");
  sub->footer(
      "Runs EXPORTED (.onnx in ONNX Runtime, .pt in libtorch, .adze in adze's packed runtime, a c-header\n"
      "directory compiled with cc) and the compressed model's simulation on the same\n"
      "data, and reports the largest output difference, the cosine similarity of all outputs, the share of\n"
      "predictions whose argmax agrees, and both top-1 accuracies. Where the runtime exposes every layer's\n"
      "output (packed), it also reports each layer's SQNR = 10·log10(Σ simulated² / Σ (exported − simulated)²)\n"
      "and cosine. Exit code 1 when a threshold is missed.\n"
      "ONNX Runtime is onnxruntime-node (scripts/install-ort.sh; ADZE_ORT_MODULE overrides where it is).\n\n"
      "Example:\n"
      "  adze verify cnn.onnx --against cnn-qat --data fmnist");
  sub->add_option("exported", o->exported, "the file adze export wrote")->required();
  sub->add_option("--against", o->against, "the adze compress output it was exported from")->required();
  sub->add_option("--data", o->data, "data SPEC")->required();
  sub->add_option("--split", o->split, "split")->capture_default_str();
  sub->add_option("--limit", o->limit, "at most N samples (0: all)");
  sub->add_option("--min-agreement", o->min_agreement,
                  "smallest argmax agreement that passes (default 0.995; 0.99 where layers quantize their inputs on "
                  "the fly)");
  sub->add_option("--min-cosine", o->min_cosine, "smallest cosine similarity that passes")->capture_default_str();
  sub->add_option("--min-layer-sqnr", o->min_layer_sqnr,
                  "smallest per-layer SQNR (dB) that passes, where the format exposes layer outputs (packed); "
                  "default 40, 30 where layers quantize their inputs on the fly");
  sub->add_option("--ort-optimization", o->optimization,
                  "ONNX Runtime graph optimization: all (integer kernels, as deployed), extended, basic (the graph as "
                  "written), disabled")
      ->check(CLI::IsMember({"all", "extended", "basic", "disabled"}))
      ->capture_default_str();
  sub->add_option("--activations", o->activations,
                  "packed runtime, layers without calibrated activation quantization (weight-only plans): dynamic "
                  "(their input quantized to int8 per row on the fly, integer kernels, as deployed) or float "
                  "(decoded weights in fp32, the simulation's numbers)")
      ->check(CLI::IsMember({"dynamic", "float"}))
      ->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_verify(*o); });  // a copy: defaults are resolved per run
}

}  // namespace adze::cli
