#include "exporters/exporter.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "compress/encoding_io.h"
#include "compress/frontend.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "core/files.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;
using Json = nlohmann::ordered_json;

// The fixture CNN compressed as `adze compress` would: fold-bn, 2:4 + INT4 on the classifier, INT8 elsewhere,
// INT8 activations; written to DIR.
struct Compressed {
  testing::TempDir tmp;
  std::string dir = tmp.file("compressed");
  Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  Compressed() {
    Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
    CompressionContext c;
    c.model = &model;
    c.table = build_layer_table(model);
    c.data = &data;
    c.plan = resolve_plan(parse_plan(Json::parse(R"({"defaults": {"weight_bits": 8, "act_bits": 8},
        "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})"), "plan.json"), c.table, "plan.json");
    const auto records = run_pipeline(
        parse_pipeline(Json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights", "quantize.calibrate"]})"), "p.json"), c);
    save_compressed(model, c.plan, c.encodings, make_report(c, records), "cnn_bn_traced.pt", dir);
  }
};

TEST(CompressedModel, LoadsBackWhatCompressWrote) {
  Compressed c;
  CompressedModel m = load_compressed(c.dir, 8);
  EXPECT_EQ(m.encodings.size(), 3u);
  EXPECT_EQ(m.plan.layers.at("classifier").nm.to_string(), "2:4");
  EXPECT_TRUE(m.report.contains("size"));
  EXPECT_EQ(m.model.traced_batch(), 8);
}

TEST(CompressedModel, RejectsMissingAndDisagreeingParts) {
  Compressed c;
  expect_error([&] { load_compressed(c.tmp.file("nope")); }, ErrorKind::kIo, {"nope", "not a directory"});
  // An Encoding that does not decode to the model's weight (another layer's codes swapped in).
  auto encodings = load_encodings(c.dir + "/encodings.pt");
  Encoding& fc = encodings.at("classifier");
  fc.codes = fc.codes.flip({1}).contiguous();
  save_encodings(encodings, c.dir + "/encodings.pt");
  expect_error([&] { load_compressed(c.dir); }, ErrorKind::kInvalidArgument, {"layer 'classifier'", "not the decoded Encoding"});
  std::filesystem::remove(c.dir + "/plan.json");
  expect_error([&] { load_compressed(c.dir); }, ErrorKind::kIo, {"plan.json"});
}

TEST(Contract, ListsEveryLayerAndOpOutsideIt) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir);
  Contract int8_dense;
  int8_dense.weight_bits = {8};
  int8_dense.granularities = {Granularity::kPerChannel};
  int8_dense.act_bits = {0};
  int8_dense.ops = {"aten::_convolution", "aten::relu"};
  const std::vector<Violation> v = check_contract(int8_dense, m);
  std::vector<std::string> lines;
  for (const auto& x : v) lines.push_back(x.to_string());
  auto has = [&](const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("layer 'classifier': weight_bits 4 (the format allows 8)"));
  EXPECT_TRUE(has("layer 'classifier': nm 2:4 (the format allows dense only)"));
  EXPECT_TRUE(has("layer 'features.0': act_bits 8 (the format allows float)"));
  EXPECT_TRUE(has("graph: op aten::linear"));
  EXPECT_TRUE(has("graph: op aten::fake_quantize_per_tensor_affine"));
  EXPECT_FALSE(has("aten::relu"));
}

TEST(TorchScriptExporter, LoadsInLibtorchAndComputesTheSimulation) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("model.pt");
  export_model(m, "torchscript", nlohmann::json::object(), out);
  torch::jit::Module loaded = torch::jit::load(out);
  loaded.eval();
  const at::Tensor x = c.data.inputs.slice(0, 0, 8);
  const at::Tensor simulated = m.model.forward(x);
  const at::Tensor exported = loaded.forward({x}).toTensor();
  const double rel = ((exported - simulated).abs().max() / simulated.abs().max()).item<double>();
  EXPECT_LE(rel, 1e-5);
  expect_error([&] { export_model(m, "torchscript", nlohmann::json::object(), out); }, ErrorKind::kIo, {"exists"});
  expect_error([&] { export_model(m, "tflite", nlohmann::json::object(), c.tmp.file("y")); }, ErrorKind::kInvalidConfig,
               {"unknown exporter 'tflite'", "torchscript"});
}

TEST(TorchScriptExporter, LoadsInPythonTorch) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("model.pt"), input = c.tmp.file("x.pt"), result = c.tmp.file("y.pt");
  export_model(m, "torchscript", nlohmann::json::object(), out);
  const at::Tensor x = c.data.inputs.slice(0, 0, 8);
  const std::vector<char> bytes = torch::pickle_save(x);
  write_file_atomically(input, std::string(bytes.begin(), bytes.end()));
  const std::string cmd = "/usr/bin/python3 -c \"import torch; m = torch.jit.load('" + out + "'); m.eval(); torch.save(m(torch.load('" +
                          input + "')), '" + result + "')\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto y = read_file_bytes(result);
  const at::Tensor from_python = torch::pickle_load(y).toTensor();
  const at::Tensor simulated = m.model.forward(x);
  EXPECT_LE(((from_python - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
}

}  // namespace
}  // namespace adze
