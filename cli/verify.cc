// adze verify EXPORTED --against COMPRESSED_DIR --data SPEC: runs the exported model in its real runtime and
// the simulation side by side on the same data, and reports how far apart they are.
#include <onnx/onnx_pb.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "compress/compressed_model.h"
#include "compress/eval.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "exporters/c_header/c_program.h"
#include "exporters/onnx/onnx_runtime.h"
#include "exporters/packed/packed_model.h"

namespace adze::cli {
namespace {

struct VerifyOptions {
  std::string exported, against, data, split = "test";
  int64_t limit = 0;
  double min_agreement = 0.995, min_cosine = 0.999;
  std::string optimization = "all";
  bool json = false;
};

std::string format_of(const std::string& path) {
  if (std::filesystem::is_directory(path) && std::filesystem::exists(path + "/model.h")) return "c-header";
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".onnx") return "onnx";
  if (ext == ".pt") return "torchscript";
  if (ext == ".adze") return "packed";
  throw Error(ErrorKind::kInvalidArgument,
              "cannot tell the format of '" + path + "' (expected .onnx, .pt, .adze or a c-header directory)");
}

// The exported ONNX model's batch: the first dimension of its input.
int64_t onnx_batch(const std::string& path) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(read_file_text(path)) || proto.graph().input_size() < 1)
    throw Error(ErrorKind::kInvalidArgument, "'" + path + "' is not an ONNX model");
  const auto& shape = proto.graph().input(0).type().tensor_type().shape();
  return shape.dim_size() > 0 && shape.dim(0).dim_value() > 0 ? shape.dim(0).dim_value() : 1;
}

at::Tensor run_torchscript(const std::string& path, const at::Tensor& x, int64_t batch) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "'" + path + "' is not a loadable TorchScript file: " + first_line_of(e));
  }
  m.eval();
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> outs;
  for (int64_t start = 0; start < x.size(0); start += batch)
    outs.push_back(m.forward({x.slice(0, start, std::min(x.size(0), start + batch))}).toTensor());
  return torch::cat(outs).reshape({-1});
}

void run_verify(const VerifyOptions& o) {
  if (!(o.min_agreement >= 0 && o.min_agreement <= 1))
    throw Error(ErrorKind::kInvalidArgument,
                "--min-agreement " + std::to_string(o.min_agreement) + ": expected a share in [0, 1]");
  if (!(o.min_cosine >= -1 && o.min_cosine <= 1))
    throw Error(ErrorKind::kInvalidArgument, "--min-cosine " + std::to_string(o.min_cosine) + ": expected [-1, 1]");
  const std::string format = format_of(o.exported);
  if (format != "c-header") require_readable_file(o.exported, "exported model");
  std::optional<packed::PackedModel> packed_model;
  if (format == "packed") packed_model.emplace(packed::PackedModel::open(o.exported));
  const int64_t batch = format == "onnx"     ? onnx_batch(o.exported)
                        : format == "packed" ? packed_model->input().shape.at(0)
                                             : 256;  // torchscript and c-header programs take any batch
  CompressedModel m = load_compressed(o.against, batch);
  InputSpec input = m.model.input();
  const Dataset data = load_data_for_model(o.against + "/model.pt", input, o.data, o.split, o.limit, batch);
  // ONNX graphs have a fixed batch: whole batches only. The other runtimes take any number of samples.
  const int64_t n = format == "onnx" ? data.size() - data.size() % batch : data.size();
  if (n == 0)
    throw Error(ErrorKind::kInvalidArgument,
                "'" + o.data + "' has fewer samples than one batch (" + std::to_string(batch) + ")");
  const at::Tensor x = data.inputs.slice(0, 0, n);

  at::Tensor simulated;
  {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> outs;
    for (int64_t start = 0; start < n; start += batch)
      outs.push_back(m.model.forward(x.slice(0, start, start + batch)));
    simulated = torch::cat(outs);
  }
  at::Tensor exported = format == "onnx"       ? run_in_onnx_runtime(o.exported, x, batch, o.optimization)
                        : format == "packed"   ? packed_model->forward(x)
                        : format == "c-header" ? c_header::compile_and_run(o.exported, x)
                                               : run_torchscript(o.exported, x, batch);
  if (exported.numel() != simulated.numel())
    throw Error(ErrorKind::kInvalidArgument, "the exported model gives " + std::to_string(exported.numel()) +
                                                 " outputs, the simulation " + std::to_string(simulated.numel()));
  exported = exported.view_as(simulated);
  const int64_t classes = simulated.size(-1);
  const at::Tensor s = simulated.reshape({-1, classes}), e = exported.reshape({-1, classes});
  const double max_abs = (e - s).abs().max().item<double>();
  const double cosine = torch::cosine_similarity(e.reshape({1, -1}), s.reshape({1, -1})).item<double>();
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
  const bool pass = agreement >= o.min_agreement && cosine >= o.min_cosine;
  nlohmann::json report = {
      {"exported", o.exported},
      {"format", format},
      {"against", o.against},
      {"ort_optimization", format == "onnx" ? nlohmann::json(o.optimization) : nlohmann::json(nullptr)},
      {"samples", n},
      {"predictions", s.size(0)},
      {"max_abs_diff", max_abs},
      {"cosine", cosine},
      {"argmax_agreement", agreement},
      {"metrics", {{"simulated", to_json(sim)}, {"exported", to_json(exp)}}},
      {"thresholds", {{"min_agreement", o.min_agreement}, {"min_cosine", o.min_cosine}}},
      {"pass", pass}};
  if (o.json) {
    std::cout << report.dump(2) << "\n";
  } else {
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
      "predictions whose argmax agrees, and both top-1 accuracies. Exit code 1 when a threshold is missed.\n"
      "ONNX Runtime is onnxruntime-node (scripts/install-ort.sh; ADZE_ORT_MODULE overrides where it is).\n\n"
      "Example:\n"
      "  adze verify cnn.onnx --against cnn-qat --data fmnist");
  sub->add_option("exported", o->exported, "the file adze export wrote")->required();
  sub->add_option("--against", o->against, "the adze compress output it was exported from")->required();
  sub->add_option("--data", o->data, "data SPEC")->required();
  sub->add_option("--split", o->split, "split")->capture_default_str();
  sub->add_option("--limit", o->limit, "at most N samples (0: all)");
  sub->add_option("--min-agreement", o->min_agreement, "smallest argmax agreement that passes")->capture_default_str();
  sub->add_option("--min-cosine", o->min_cosine, "smallest cosine similarity that passes")->capture_default_str();
  sub->add_option("--ort-optimization", o->optimization,
                  "ONNX Runtime graph optimization: all (integer kernels, as deployed), extended, basic (the graph as "
                  "written), disabled")
      ->check(CLI::IsMember({"all", "extended", "basic", "disabled"}))
      ->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_verify(*o); });
}

}  // namespace adze::cli
