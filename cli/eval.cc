// adze eval MODEL --data SPEC [--split test] [--limit N] [--batch-size B] [--json]
#include "data/eval.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/table.h"
#include "data/dataset.h"
#include "model/frontend.h"

namespace adze::cli {
namespace {

struct EvalCliOptions {
  std::string model;
  std::string data;
  std::string split = "test";
  int64_t limit = 0;
  int64_t batch_size = 0;
  std::string input_shape;
  std::string input_dtype;
  bool json = false;
};

void print_human(const Metrics& m, const std::string& model, const std::string& data) {
  std::cout << "model " << model << " on " << data << "\n\n";
  Table table;
  table.add_column("metric");
  table.add_column("value", Table::Align::kRight);
  table.add_column("unit");
  table.add_row({"samples", std::to_string(m.samples), m.task == Task::kLanguageModel ? "windows" : "images"});
  table.add_row({"top-1 accuracy", percent(m.top1), m.task == Task::kLanguageModel ? "of next tokens" : "of images"});
  table.add_row({"cross-entropy", fixed(m.cross_entropy, 4), "nats per prediction"});
  if (m.task == Task::kLanguageModel) {
    table.add_row({"perplexity", fixed(m.perplexity(), 3), "per character"});
    table.add_row({"bits per character", fixed(m.bits_per_char(), 4), "bits"});
  }
  table.print(std::cout);
}

void run_eval(const EvalCliOptions& o) {
  const std::string path = resolve_model_path(o.model);
  InputSpec input = resolve_input_spec(path, o.input_shape, o.input_dtype);
  const Dataset data =
      load_data_for_model(path, input, o.data, o.split, o.limit, o.batch_size);  // traced at the eval batch
  Model model = load_torchscript(path, input);
  const Metrics m = evaluate(model, data, {model.traced_batch(), show_progress(o.json)});
  if (o.json) {
    nlohmann::json j = {{"model", path}, {"data", o.data}, {"split", o.split}, {"metrics", to_json(m)}};
    std::cout << j.dump(2) << "\n";
  } else {
    print_human(m, path, data.name);
  }
}

}  // namespace

void setup_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCliOptions>();
  auto* sub = app.add_subcommand("eval", "Evaluate a model: top-1, cross-entropy, perplexity, bits per character");
  sub->footer(
      "Data SPECs:\n"
      "  fmnist[:DIR]     Fashion-MNIST (default /usr/share/datasets/fashion-mnist); splits train/val/test\n"
      "  fortunes         the fortunes text corpus as bytes; chars:DIR for any directory of text files\n"
      "  tensors:FILE     torch.save({'inputs': X, 'targets': Y}) or a tuple (X, Y)\n\n"
      "Examples:\n"
      "  adze eval fmnist-cnn --data fmnist\n"
      "  adze eval fortune-gpt --data fortunes --split val --limit 200 --json");
  sub->add_option("model", o->model, "TorchScript file or reference model name")->required();
  sub->add_option("--data", o->data, "data SPEC (see below)")->required();
  sub->add_option("--split", o->split, "train, val or test")->capture_default_str();
  sub->add_option("--limit", o->limit, "evaluate at most N samples (0: all)");
  sub->add_option("--batch-size", o->batch_size, "batch size (default 256 for images, 32 for text)");
  sub->add_option("--input-shape", o->input_shape, "sample input shape when no card records it");
  sub->add_option("--input-dtype", o->input_dtype, "float32 or int64");
  sub->add_flag("--json", o->json, "print the metrics as JSON");
  sub->callback([o] { run_eval(*o); });
}

}  // namespace adze::cli
