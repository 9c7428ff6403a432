// adze export COMPRESSED_DIR --format F --out PATH, and adze exporters [--json]: the contracts.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "exporters/exporter.h"

namespace adze::cli {
namespace {

struct ExportOptions {
  std::string dir, format, out;
  int64_t batch = 1;
  std::string ort_target, activations;  ///< "" when not given
  bool dynamic_batch = false;
};

// A flag that sets an exporter option applies to the formats whose exporter declares that option.
void set_option(nlohmann::json& options, const std::string& format, const std::string& flag, const std::string& name,
                const nlohmann::json& value) {
  const auto declares = [&](const Registry<Exporter>::Entry& e) {
    return std::any_of(e.options.begin(), e.options.end(), [&](const OptionSpec& s) { return s.name == name; });
  };
  if (declares(exporter_registry().get(format, "--format"))) {
    options[name] = value;
    return;
  }
  std::string formats;
  for (const auto& e : exporter_registry().entries())
    if (declares(e)) formats += (formats.empty() ? "" : ", ") + e.name;
  throw Error(ErrorKind::kInvalidArgument, flag + " applies to --format " + formats + " only");
}

// A flag of its own for an exporter's string option: its help, default and choices are the option's, as the
// exporters that declare it give them.
void exporter_flag(CLI::App* sub, const std::string& flag, const std::string& name, std::string& target) {
  std::string formats;
  const OptionSpec* spec = nullptr;
  for (const auto& e : exporter_registry().entries())
    for (const OptionSpec& s : e.options)
      if (s.name == name) {
        formats += (formats.empty() ? "" : ", ") + e.name;
        spec = &s;
      }
  if (!spec) throw Error(ErrorKind::kInternal, "no exporter declares the option '" + name + "'");
  CLI::Option* option =
      sub->add_option(flag, target, formats + ": " + spec->help + " (default " + spec->default_value.dump() + ")");
  if (!spec->limits.choices.empty()) option->check(CLI::IsMember(spec->limits.choices));
}

void run_export(const ExportOptions& o) {
  require_new_output(o.out, "--out");
  exporter_registry().get(o.format, "--format");  // an unknown format fails before loading anything
  if (o.batch < 1) throw Error(ErrorKind::kInvalidArgument, "--batch must be at least 1");
  nlohmann::json options = nlohmann::json::object();
  if (!o.ort_target.empty()) set_option(options, o.format, "--ort-target", "ort_target", o.ort_target);
  if (o.dynamic_batch) set_option(options, o.format, "--dynamic-batch", "dynamic_batch", true);
  if (!o.activations.empty()) set_option(options, o.format, "--activations", "activations", o.activations);
  const CompressedModel model = load_compressed(o.dir, o.batch);
  export_model(model, o.format, options, o.out);
  std::cout << "wrote " << o.out << " (" << o.format;
  if (std::filesystem::is_regular_file(o.out)) std::cout << ", " << std::filesystem::file_size(o.out) << " bytes";
  std::cout << ")\n";
  for (const std::string& note : exporter_registry().create(o.format, options, "--format")->written_notes(o.out))
    std::cout << note << "\n";
}

std::string list(const nlohmann::json& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i.get<std::string>();
  return s.empty() ? "none" : s;
}

void print_contracts(bool json) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : exporter_registry().entries()) {
    const nlohmann::json c = to_json(e.make(nlohmann::json::object())->contract());
    nlohmann::json options = nlohmann::json::array();
    for (const auto& option : e.options) options.push_back(to_json(option));
    out.push_back({{"name", e.name}, {"summary", e.summary}, {"contract", c}, {"options", options}});
    if (json) continue;
    std::cout << e.name << "\n    " << e.summary << "\n"
              << "    weight bits: " << list(c["weight_bits"]) << "; granularity: " << list(c["granularities"])
              << "; asymmetric: " << (c["asymmetric_weights"].get<bool>() ? "yes" : "no")
              << "; quantizers: " << list(c["quantizers"]) << "\n"
              << "    activation bits: " << list(c["act_bits"]) << "; N:M: " << list(c["nm"])
              << "; permutation: " << (c["permutation"].get<bool>() ? "yes" : "no")
              << "; unstructured: " << (c["unstructured"].get<bool>() ? "yes" : "no")
              << "; decompositions: " << list(c["decompositions"]) << "\n"
              << "    ops: " << list(c["ops"]) << "\n"
              << "    accelerated: weight bits " << list(c["accelerated"]["weight_bits"]) << ", N:M "
              << list(c["accelerated"]["nm"]) << " (" << c["accelerated"]["notes"].get<std::string>() << ")\n";
    for (const auto& option : e.options) std::cout << help_line(option, "    option ") << "\n";
  }
  if (json) std::cout << out.dump(2) << "\n";
}

}  // namespace

void setup_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* sub =
      app.add_subcommand("export", "Export a compressed model (the --out of adze compress) to a deployable format");
  sub->footer(
      "The compressed model is checked against the format's contract first ('adze exporters' prints them):\n"
      "every layer or op the format cannot represent is listed, and nothing is written. The output is written\n"
      "all or nothing.\n\n"
      "Example:\n"
      "  adze export cnn-qat --format torchscript --out cnn-qat.pt\n"
      "  adze export cnn-qat --format packed --out cnn-qat.adze       (run it: adze verify cnn-qat.adze ...)");
  sub->add_option("dir", o->dir, "output directory of adze compress")->required();
  sub->add_option("--format", o->format, "exporter name (see adze exporters)")->required();
  sub->add_option("--out", o->out, "file or directory to write (must not exist)")->required();
  sub->add_option("--batch", o->batch, "batch size of the exported graph where the format fixes one (onnx, packed)")
      ->capture_default_str();
  sub->add_flag(
      "--dynamic-batch", o->dynamic_batch,
      "onnx, torchscript, packed: one file for every batch size (a symbolic batch dimension), where the model allows "
      "it (when not, the error says why)");
  exporter_flag(sub, "--ort-target", "ort_target", o->ort_target);
  exporter_flag(sub, "--activations", "activations", o->activations);
  sub->callback([o] { run_export(*o); });

  auto json = std::make_shared<bool>(false);
  auto* list_sub = app.add_subcommand(
      "exporters", "List the export formats with their contracts: what each can represent and accelerate");
  list_sub->add_flag("--json", *json, "print JSON");
  list_sub->callback([json] { print_contracts(*json); });
}

}  // namespace adze::cli
