// adze inspect MODEL --input-shape 1x3x224x224 [--json] [--fold-bn]
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/table.h"
#include "model/fold_bn.h"
#include "model/frontend.h"
#include "model/layer_table.h"

namespace adze::cli {
namespace {

struct InspectOptions {
  std::string model;
  std::string input_shape;
  std::string input_dtype;
  bool json = false;
  bool fold_bn = false;
};

std::string kind_label(const Layer& l) {
  std::string kind = to_string(l.kind);
  if (l.depthwise()) return kind + " dw";
  if (l.groups > 1) return kind + " g" + std::to_string(l.groups);
  if (l.uses > 1) return kind + " x" + std::to_string(l.uses);
  return kind;
}

nlohmann::json to_json(const LayerTable& t, const Model& model) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : t.layers)
    layers.push_back({{"name", l.name},
                      {"weight", l.weight},
                      {"kind", to_string(l.kind)},
                      {"shape", l.weight_shape},
                      {"params", l.params},
                      {"bias_params", l.bias_params},
                      {"macs", l.macs},
                      {"in_channels", l.in_channels},
                      {"out_channels", l.out_channels},
                      {"groups", l.groups},
                      {"depthwise", l.depthwise()},
                      {"reduction_dim", l.reduction_dim},
                      {"reduction_size", l.reduction_size},
                      {"uses", l.uses},
                      {"tied_names", l.tied_names}});
  nlohmann::json unknown = nlohmann::json::array();
  for (const auto& u : t.unknown_ops) unknown.push_back({{"op", u.kind}, {"count", u.count}});
  return {{"model", model.source()},
          {"input", {{"shape", model.input().shape}, {"dtype", model.input().dtype}}},
          {"layers", layers},
          {"unknown_ops", unknown},
          {"total", {{"params", t.total_params}, {"macs", t.total_macs}, {"bytes_fp32", 4 * t.total_params}}}};
}

void print_human(const LayerTable& t, const Model& model) {
  std::cout << "model " << model.source() << ", input " << shape_to_string(model.input().shape) << " ("
            << model.input().dtype << "), MACs per sample\n\n";
  Table table;
  table.add_column("layer");
  table.add_column("kind");
  table.add_column("weight shape");
  table.add_column("params", Table::Align::kRight);
  table.add_column("params %", Table::Align::kRight);
  table.add_column("MACs", Table::Align::kRight);
  table.add_column("MACs %", Table::Align::kRight);
  int64_t layer_params = 0;
  for (const auto& l : t.layers) {
    layer_params += l.params;
    table.add_row({l.name, kind_label(l), shape_to_string(l.weight_shape), human_count(double(l.params)),
                   percent(double(l.params) / double(std::max<int64_t>(1, t.total_params)), 1),
                   human_count(double(l.macs)),
                   percent(double(l.macs) / double(std::max<int64_t>(1, t.total_macs)), 1)});
  }
  table.add_rule();
  table.add_row({"compressible weights", std::to_string(t.layers.size()) + " layers", "",
                 human_count(double(layer_params)),
                 percent(double(layer_params) / double(std::max<int64_t>(1, t.total_params)), 1), "", ""});
  table.add_row(
      {"total", "", "", human_count(double(t.total_params)), "100.0%", human_count(double(t.total_macs)), "100.0%"});
  table.print(std::cout);
  std::cout << "\nparameters " << t.total_params << " (" << human_bytes(4.0 * double(t.total_params)) << " as fp32), "
            << t.total_macs << " MACs per sample\n";
  if (!t.unknown_ops.empty()) {
    std::cout << "ops adze does not know (kept as they are, not compressed):";
    for (const auto& u : t.unknown_ops) std::cout << " " << u.kind << " x" << u.count;
    std::cout << "\n";
  }
  for (const auto& l : t.layers)
    if (!l.tied_names.empty()) {
      std::cout << "tied: " << l.weight << " is also";
      for (const auto& n : l.tied_names) std::cout << " " << n;
      std::cout << "\n";
    }
}

void run_inspect(const InspectOptions& o) {
  const std::string path = resolve_model_path(o.model);
  Model model = load_torchscript(path, resolve_input_spec(path, o.input_shape, o.input_dtype));
  if (o.fold_bn) fold_batch_norm(model);
  const LayerTable table = build_layer_table(model);
  if (o.json)
    std::cout << to_json(table, model).dump(2) << "\n";
  else
    print_human(table, model);
}

}  // namespace

void setup_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* sub = app.add_subcommand("inspect", "List the compressible layers of a model: kind, shape, params, MACs");
  sub->footer(
      "MODEL is a TorchScript file (torch.jit.trace, torch.jit.script or adze) or a trained reference model name.\n"
      "The model is traced once on a sample input of --input-shape, which includes the batch dimension;\n"
      "MACs are per sample. Reference models record their input shape in the card beside them.\n\n"
      "Examples:\n"
      "  adze inspect resnet18.pt --input-shape 1x3x224x224\n"
      "  adze inspect fmnist-cnn --fold-bn --json");
  sub->add_option("model", o->model, "TorchScript file or reference model name")->required();
  sub->add_option("--input-shape", o->input_shape, "sample input shape with batch, e.g. 1x3x224x224");
  sub->add_option("--input-dtype", o->input_dtype, "sample input dtype: float32 (default) or int64 (token ids)");
  sub->add_flag("--fold-bn", o->fold_bn, "fold BatchNorm into the preceding conv/linear first");
  sub->add_flag("--json", o->json,
                "print JSON: {layers:[{name,kind,shape,params,macs}], total:{params,macs,bytes_fp32}}");
  sub->callback([o] { run_inspect(*o); });
}

}  // namespace adze::cli
