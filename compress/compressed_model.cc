#include "compress/compressed_model.h"

#include <torch/torch.h>

#include <filesystem>

#include "compress/encoding_io.h"
#include "compress/report.h"
#include "core/error.h"
#include "core/files.h"
#include "model/batch_symbolic.h"
#include "model/frontend.h"
#include "model/torchscript_io.h"

namespace adze {

void save_compressed(const Model& model, const ResolvedPlan& plan, const std::map<std::string, Encoding>& encodings,
                     const nlohmann::ordered_json& report, const std::string& source, const std::string& dir) {
  write_directory_atomically(dir, [&](const std::string& tmp) {
    // The batch-generic graph where there is one: load_compressed may trace it at any batch size.
    save_torchscript(batch_generic_or_specialised(model), tmp + "/model.pt");
    nlohmann::json card = {{"input", {{"shape", model.input().shape}, {"dtype", model.input().dtype}}},
                           {"source", source}};
    card["input"]["shape"][0] = 1;
    write_file_atomically(tmp + "/model.json", card.dump(2) + "\n");
    write_file_atomically(tmp + "/plan.json", to_json(plan).dump(2) + "\n");
    save_encodings(encodings, tmp + "/encodings.pt");
    write_file_atomically(tmp + "/report.json", report.dump(2) + "\n");
    write_file_atomically(tmp + "/report.md", report_markdown(report));
  });
}

CompressedModel load_compressed(const std::string& dir, int64_t batch) {
  if (!std::filesystem::is_directory(dir))
    throw Error(ErrorKind::kIo,
                "compressed model '" + dir + "': not a directory (expected the --out of adze compress)");
  const std::string model_path = dir + "/model.pt";
  for (const char* part : {"/model.pt", "/model.json", "/plan.json", "/encodings.pt"})
    require_readable_file(dir + part, "compressed model part");
  const std::optional<InputSpec> input = read_input_spec_beside(model_path);
  if (!input) throw Error(ErrorKind::kIo, "compressed model '" + dir + "': model.json has no input spec");
  InputSpec traced = *input;
  traced.shape[0] = std::max<int64_t>(1, batch);
  Model model = load_torchscript(model_path, traced);
  LayerTable table = build_layer_table(model);
  ResolvedPlan plan = resolve_plan(load_plan(dir + "/plan.json"), table, dir + "/plan.json");
  std::map<std::string, Encoding> encodings = load_encodings(dir + "/encodings.pt");

  const std::string where = "compressed model '" + dir + "'";
  for (const auto& [name, e] : encodings) {
    const Layer* layer = nullptr;
    for (const auto& l : table.layers)
      if (l.name == name) layer = &l;
    if (!layer)
      throw Error(ErrorKind::kInvalidArgument,
                  where + ": encodings.pt has layer '" + name + "', which the model does not");
    if (!(e.config == plan.layers.at(name)))
      throw Error(ErrorKind::kInvalidArgument,
                  where + ": layer '" + name + "': encodings.pt and plan.json disagree on its config");
    const at::Tensor& weight = model.tensors().at(static_cast<std::size_t>(model.find_tensor(layer->weight))).value;
    if (!torch::equal(weight.to(torch::kFloat), e.decode()))
      throw Error(ErrorKind::kInvalidArgument,
                  where + ": layer '" + name + "': model.pt's weight is not the decoded Encoding");
  }
  nlohmann::json report;
  if (std::filesystem::exists(dir + "/report.json")) {
    try {
      report = nlohmann::json::parse(read_file_text(dir + "/report.json"));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::kIo, where + ": report.json is not JSON (" + std::string(e.what()) + ")");
    }
  }
  return CompressedModel{
      dir, std::move(model), std::move(table), std::move(plan), std::move(encodings), std::move(report)};
}

}  // namespace adze
