// adze verify EXPORTED --against COMPRESSED_DIR --data SPEC: runs the exported model in its real runtime and
// the simulation side by side on the same data (exporters/verify.h), and reports how far apart they are.
#include "exporters/verify.h"

#include <cmath>
#include <iostream>

#include "cli/commands.h"
#include "core/table.h"

namespace adze::cli {
namespace {

std::string decibels(double db) { return std::isinf(db) ? "exact" : fixed(db, 1) + " dB"; }

void run_verify(VerifyOptions o, bool json) {
  o.progress = show_progress(json);
  const Verification v = verify(std::move(o));
  if (json) {
    std::cout << to_json(v).dump(2) << "\n";
  } else {
    if (!v.layers.empty()) {
      Table l;
      l.add_column("layer output");
      l.add_column("own SQNR", Table::Align::kRight);
      l.add_column("SQNR", Table::Align::kRight);
      l.add_column("cosine", Table::Align::kRight);
      l.add_column("max |diff|", Table::Align::kRight);
      for (std::size_t i = 0; i < v.layers.size(); ++i) {
        const auto& [key, st] = v.layers[i];
        const double own = v.own_layers[i].second.sqnr_db();
        l.add_row(
            {key,
             decibels(own) + (own < v.options.min_layer_sqnr ? " (< " + decibels(v.options.min_layer_sqnr) + ")" : ""),
             decibels(st.sqnr_db()), fixed(st.cosine(), 6), fixed(st.max_abs, 6)});
      }
      l.print(std::cout);
      std::cout << "\n";
    }
    Table t;
    t.add_column("measure");
    t.add_column("value", Table::Align::kRight);
    t.add_column("threshold", Table::Align::kRight);
    t.add_row({"samples (" + v.format + ")", std::to_string(v.samples), ""});
    t.add_row({"max |exported - simulated|", fixed(v.max_abs_diff, 6), ""});
    t.add_row({"cosine similarity", fixed(v.cosine, 6), ">= " + fixed(v.options.min_cosine, 4)});
    t.add_row({"argmax agreement", percent(v.argmax_agreement, 2), ">= " + percent(v.options.min_agreement, 2)});
    t.add_row({"top-1 simulated / exported", percent(v.simulated.top1, 2) + " / " + percent(v.exported.top1, 2), ""});
    t.print(std::cout);
    std::cout << (v.pass ? "verified" : "NOT verified: a threshold is missed") << "\n";
  }
  if (!v.pass) throw CheckFailed();
}

}  // namespace

void setup_verify(CLI::App& app) {
  auto o = std::make_shared<VerifyOptions>();
  auto json = std::make_shared<bool>(false);
  auto* sub =
      app.add_subcommand("verify", "Run an exported model in its real runtime against the simulation it came from");
  sub->footer(
      "Runs EXPORTED (.onnx in ONNX Runtime, .pt in libtorch, .adze in adze's packed runtime, a c-header\n"
      "directory compiled with cc) and the compressed model's simulation on the same\n"
      "data, and reports the largest output difference, the cosine similarity of all outputs, the share of\n"
      "predictions whose argmax agrees, and both top-1 accuracies. Where the runtime exposes every layer's\n"
      "output (packed), it also reports each layer's SQNR = 10·log10(Σ simulated² / Σ (exported − simulated)²)\n"
      "twice: 'own', the layer run from the simulation's outputs of the layers before it (its error alone, which\n"
      "--min-layer-sqnr bounds), and as the whole model ran (with what the layers before passed on), with its\n"
      "cosine and largest difference. Exit code 1 when a threshold is missed.\n"
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
                  "smallest own SQNR (dB) of a layer that passes, where the format exposes layer outputs (packed); "
                  "default 40, 30 where layers quantize their inputs on the fly");
  sub->add_option("--ort-optimization", o->ort_optimization,
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
  sub->add_flag("--json", *json, "print JSON");
  sub->callback([o, json] { run_verify(*o, *json); });
}

}  // namespace adze::cli
