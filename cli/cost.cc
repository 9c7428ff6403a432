// adze cost MODEL --plan plan.json --target T [--batch N] [--json]: per-layer and total latency, energy and
// bytes of a plan on a target, from a cost model (hardware/cost_model.h).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compress/plan.h"
#include "core/table.h"
#include "hardware/cost_model.h"
#include "model/frontend.h"
#include "model/layer_table.h"

namespace adze::cli {
namespace {

struct CostOptions {
  std::string model, plan, target, cost_model = "roofline", input_shape, input_dtype;
  int64_t batch = 1;
  bool json = false;
};

std::string micro(double seconds) { return fixed(seconds * 1e6, 2); }

void run_cost(const CostOptions& o) {
  if (o.batch < 1) throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(o.batch) + ": must be >= 1");
  const Target target = load_target(o.target);
  const auto model_entry = cost_models().get(o.cost_model, "--cost-model");
  const Plan plan = load_plan(o.plan);
  const std::string path = resolve_model_path(o.model);
  const InputSpec input = resolve_input_spec(path, o.input_shape, o.input_dtype);
  const Model model = load_torchscript(path, input);
  const LayerTable table = build_layer_table(model);
  const ResolvedPlan resolved = resolve_plan(plan, table, o.plan);
  for (const auto& w : resolved.warnings) std::cerr << "adze: warning: " << w << "\n";
  const auto cost_model = model_entry.make(nlohmann::json::object());
  const ModelCost cost = model_cost(*cost_model, target, table, resolved.layers, o.batch);
  if (o.json) {
    nlohmann::json j = to_json(cost);
    j["model"] = model.source();
    j["target"] = target.name;
    j["cost_model"] = o.cost_model;
    j["batch"] = o.batch;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model " << model.source() << " on " << target.name << " (" << target.description << "), batch "
            << o.batch << ", cost model " << o.cost_model << "\n\n";
  Table t;
  t.add_column("layer");
  t.add_column("computes in");
  t.add_column("MACs", Table::Align::kRight);
  t.add_column("weights", Table::Align::kRight);
  t.add_column("activations", Table::Align::kRight);
  t.add_column("bound");
  t.add_column("latency µs", Table::Align::kRight);
  t.add_column("energy µJ", Table::Align::kRight);
  for (const auto& [name, c] : cost.layers)
    t.add_row({name, c.precision, human_count(c.macs), human_bytes(c.weight_bytes), human_bytes(c.activation_bytes),
               c.memory_bound() ? "memory (" + c.weight_level + ")" : "compute", micro(c.latency_s),
               fixed(c.energy_j * 1e6, 3)});
  t.add_row({});
  t.add_row({"total", "", "", human_bytes(cost.weight_bytes), "peak " + human_bytes(cost.peak_activation_bytes), "",
             micro(cost.latency_s), fixed(cost.energy_j * 1e6, 3)});
  t.print(std::cout);
  if (cost.streamed_latency_s > 0)
    std::cout << "weights streamed from storage while earlier layers run: " << micro(cost.streamed_latency_s)
              << " µs\n";
  for (const auto& p : cost.fit_problems) std::cout << "does not fit: " << p << "\n";
}

}  // namespace

void setup_cost(CLI::App& app) {
  auto o = std::make_shared<CostOptions>();
  auto* sub = app.add_subcommand("cost", "Estimate a plan's latency, energy and bytes on a hardware target");
  sub->footer(
      "Prices every layer of MODEL under PLAN on TARGET with a cost model (--cost-model):\n" +
      registry_listing(cost_models(), "") +
      "roofline: latency = per-layer\n"
      "overhead + max(MACs / peak MACs/s at the layer's precision and N:M speedup, weight bytes (real encoded\n"
      "size) / bandwidth + activation bytes / bandwidth of the level that holds them); energy = MACs x pJ/MAC +\n"
      "bytes x pJ/B. Also: whether weights and activations fit (microcontrollers), and the latency when weights\n"
      "stream from storage while earlier layers run. Figures and their sources: adze target show T.\n\n"
      "Examples:\n"
      "  adze cost fmnist-cnn --plan configs/plans/w8a8.json --target cortex-m7\n"
      "  adze cost model.pt --input-shape 1x3x224x224 --plan plan.json --target a100 --batch 64 --json");
  sub->add_option("model", o->model, "TorchScript file, or a reference model name")->required();
  sub->add_option("--plan", o->plan, "plan JSON (adze compress's format)")->required();
  sub->add_option("--target", o->target, "a100, cortex-a76, mobile-npu, cortex-m7, fpga-sta, host, or a JSON file")
      ->required();
  sub->add_option("--batch", o->batch, "samples per inference")->capture_default_str();
  sub->add_option("--cost-model", o->cost_model, "a cost model listed below")->capture_default_str();
  sub->add_option("--input-shape", o->input_shape, "sample input shape, e.g. 1x3x224x224 (default: the model card)");
  sub->add_option("--input-dtype", o->input_dtype, "float32 or int64");
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_cost(*o); });
}

}  // namespace adze::cli
