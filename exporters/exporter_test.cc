#include "exporters/exporter.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "compress/compress_run.h"
#include "compress/encoding_io.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "core/files.h"
#include "exporters/agreement.h"
#include "exporters/compressed_fixture.h"
#include "exporters/onnx/onnx_runtime.h"
#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::Compressed;
using testing::expect_error;
using testing::fixture;
using Json = nlohmann::ordered_json;

TEST(CompressedModel, LoadsBackWhatCompressWrote) {
  Compressed c;
  CompressedModel m = load_compressed(c.dir, 8);
  EXPECT_EQ(m.encodings.size(), 3u);
  EXPECT_EQ(m.plan.layers.at("classifier").nm.to_string(), "2:4");
  EXPECT_TRUE(m.report.contains("size"));
  EXPECT_EQ(m.model.traced_batch(), 8);
}

TEST(CompressedModel, ExportsFromMemoryWhatTheDiskRoundTripExports) {
  testing::TempDir tmp;
  const Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  const Pipeline pipeline = parse_pipeline(
      Json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights", "quantize.calibrate"]})"), "p.json");
  const auto run = [&] {
    return compress_run(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"},
                        parse_plan(Json::parse(testing::kPlan), "plan.json"), "plan.json", pipeline, &data, &data,
                        /*seed=*/0, /*progress=*/false);
  };
  const std::string dir = tmp.file("compressed");
  CompressRun saved = run();
  save_compressed(*saved.model, saved.context.plan, saved.context.encodings, saved.report, "cnn", dir);
  const CompressedModel from_disk = load_compressed(dir, 8);
  const CompressedModel in_memory = to_compressed_model(run(), dir);
  EXPECT_EQ(in_memory.encodings.size(), from_disk.encodings.size());
  EXPECT_EQ(in_memory.report["layers"], from_disk.report["layers"]);
  EXPECT_EQ(in_memory.report["metrics"], from_disk.report["metrics"]);
  for (const std::string file : {"model.onnx", "model.adze", "model.pt"}) {
    const std::string format = file == "model.onnx" ? "onnx" : file == "model.adze" ? "packed" : "torchscript";
    export_model(from_disk, format, {}, tmp.file("disk-" + file));
    export_model(in_memory, format, {}, tmp.file("memory-" + file));
  }
  // ONNX and packed files are the same bytes.
  EXPECT_TRUE(read_file_bytes(tmp.file("disk-model.onnx")) == read_file_bytes(tmp.file("memory-model.onnx")));
  EXPECT_TRUE(read_file_bytes(tmp.file("disk-model.adze")) == read_file_bytes(tmp.file("memory-model.adze")));
  // TorchScript reads the module's parameters in another order (BatchNorm folding added the biases after
  // the weights in memory), and computes the same.
  torch::jit::Module disk = torch::jit::load(tmp.file("disk-model.pt")),
                     memory = torch::jit::load(tmp.file("memory-model.pt"));
  const at::Tensor x = torch::randn({8, 3, 16, 16}, torch::TensorOptions().dtype(torch::kFloat));
  EXPECT_TRUE(torch::equal(disk.forward({x}).toTensor(), memory.forward({x}).toTensor()));
}

TEST(CompressedModel, RejectsMissingAndDisagreeingParts) {
  Compressed c;
  expect_error([&] { load_compressed(c.tmp.file("nope")); }, ErrorKind::kIo, {"nope", "not a directory"});
  // An Encoding that does not decode to the model's weight (another layer's codes swapped in).
  auto encodings = load_encodings(c.dir + "/encodings.pt");
  Encoding& fc = encodings.at("classifier");
  fc.codes = fc.codes.flip({1}).contiguous();
  save_encodings(encodings, c.dir + "/encodings.pt");
  expect_error([&] { load_compressed(c.dir); }, ErrorKind::kInvalidArgument,
               {"layer 'classifier'", "not the decoded Encoding"});
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
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
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
  const std::string cmd = "/usr/bin/python3 -c \"import torch; m = torch.jit.load('" + out +
                          "'); m.eval(); torch.save(m(torch.load('" + input + "')), '" + result + "')\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto y = read_file_bytes(result);
  const at::Tensor from_python = torch::pickle_load(y).toTensor();
  const at::Tensor simulated = m.model.forward(x);
  EXPECT_LE(((from_python - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
}

TEST(OnnxExporter, WritesQdqWithExactCodesAndRunsInOnnxRuntime) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("model.onnx");
  export_model(m, "onnx", {{"ort_target", "vnni"}}, out);  // signed codes, as encoded (portable adds 128)
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(read_file_text(out)));
  std::map<std::string, const onnx::TensorProto*> init;
  for (const auto& t : proto.graph().initializer()) init[t.name()] = &t;
  ASSERT_TRUE(init.count("classifier.weight.codes"));
  const onnx::TensorProto& codes = *init.at("classifier.weight.codes");
  EXPECT_EQ(codes.data_type(), onnx::TensorProto::INT8);
  const Encoding& e = m.encodings.at("classifier");
  const at::Tensor expected =
      e.from_canonical(e.codes.reshape({e.channels(), e.reduction()})).to(torch::kChar).contiguous();
  EXPECT_EQ(codes.raw_data(), std::string(static_cast<const char*>(expected.data_ptr()), expected.numel()));
  int dq = 0, q = 0;
  for (const auto& n : proto.graph().node()) {
    dq += n.op_type() == "DequantizeLinear";
    q += n.op_type() == "QuantizeLinear";
  }
  EXPECT_EQ(q, 3 + 1);           // one per layer input, and the average pool's input (integer placement)
  EXPECT_EQ(dq, 3 + 1 + 3 + 3);  // and one per weight and per int32 bias
  bool nm_recorded = false;
  for (const auto& p : proto.metadata_props()) nm_recorded |= p.key() == "adze.nm.classifier" && p.value() == "2:4";
  EXPECT_TRUE(nm_recorded);

  const at::Tensor x = c.data.inputs.slice(0, 0, 40);
  const at::Tensor simulated = m.model.forward(x);
  const at::Tensor from_ort = run_in_onnx_runtime(out, x, 8).view_as(simulated);
  const double max_abs = (from_ort - simulated).abs().max().item<double>();
  const double cosine = torch::cosine_similarity(from_ort.reshape({1, -1}), simulated.reshape({1, -1})).item<double>();
  const double agree = from_ort.argmax(1).eq(simulated.argmax(1)).to(torch::kFloat).mean().item<double>();
  RecordProperty("max_abs_diff", std::to_string(max_abs));
  RecordProperty("cosine", std::to_string(cosine));
  EXPECT_GT(cosine, 0.999) << "max abs diff " << max_abs;
  EXPECT_GE(agree, 0.95) << "max abs diff " << max_abs << ", cosine " << cosine;
}

// Models adze did not write (torch.jit.trace and torch.jit.script in Python, tests/data/make_fixtures.py), INT8
// weights, exported and run in ONNX Runtime against the simulation.
TEST(OnnxExporter, PythonFixturesRunInOnnxRuntime) {
  // resnet18 and mobilenet_v2 are torchvision's architectures at reduced width; ops_traced.pt holds the rest of
  // the exporter's op list.
  for (const auto& [file, shape] :
       std::vector<std::pair<std::string, Shape>>{{"cnn_bn_scripted.pt", {4, 3, 16, 16}},
                                                  {"encoder_traced.pt", {4, 10, 16}},
                                                  {"encoder_scripted.pt", {4, 10, 16}},
                                                  {"resnet18_w4_traced.pt", {4, 3, 32, 32}},
                                                  {"mobilenet_v2_traced.pt", {4, 3, 32, 32}},
                                                  {"ops_traced.pt", {4, 4, 8, 8}}}) {
    SCOPED_TRACE(file);
    testing::TempDir tmp;
    Model model = load_torchscript(fixture(file), {shape, "float32"});
    CompressionContext c;
    c.model = &model;
    c.table = build_layer_table(model);
    c.plan =
        resolve_plan(parse_plan(Json::parse(R"({"defaults": {"weight_bits": 8}})"), "plan.json"), c.table, "plan.json");
    const auto records =
        run_pipeline(parse_pipeline(Json::parse(R"({"passes": ["fold-bn", "quantize.weights"]})"), "p.json"), c);
    save_compressed(model, c.plan, c.encodings, make_report(c, records), file, tmp.file("c"));
    const CompressedModel m = load_compressed(tmp.file("c"), shape[0]);
    // Float activations: fp32 on the decoded weights, the simulation's numbers (onnx_ort_test.cc checks the
    // integer forms).
    export_model(m, "onnx", {{"activations", "float"}}, tmp.file("m.onnx"));
    torch::manual_seed(0);
    std::vector<int64_t> dims(shape.begin(), shape.end());
    dims[0] *= 3;  // three batches
    const at::Tensor x = torch::randn(dims);
    const at::Tensor simulated = m.model.forward(x);
    const double scale = simulated.abs().max().item<double>();
    // The graph's own semantics (ONNX Runtime without fusions) computes the simulation; with its default
    // optimizations, INT8 weights run in integer kernels and differ a little more.
    const at::Tensor exact = run_in_onnx_runtime(tmp.file("m.onnx"), x, shape[0], "basic").view_as(simulated);
    EXPECT_LT((exact - simulated).abs().max().item<double>(), 1e-4 * scale);
    const at::Tensor deployed = run_in_onnx_runtime(tmp.file("m.onnx"), x, shape[0]).view_as(simulated);
    EXPECT_LT((deployed - simulated).abs().max().item<double>(), 1e-2 * scale);
  }
}

TEST(OnnxExporter, RefusesWhatItsContractExcludesBeforeWriting) {
  Compressed c(R"({"defaults": {"weight_bits": 4, "quantizer": "pow2"}, "layers": {"classifier": {"act_bits": 16}}})");
  const CompressedModel m = load_compressed(c.dir);
  const std::string out = c.tmp.file("model.onnx");
  expect_error([&] { export_model(m, "onnx", nlohmann::json::object(), out); }, ErrorKind::kUnsupported,
               {"cannot be exported as onnx", "4 violation(s)",
                "layer 'features.0': quantizer pow2 (the format allows uniform only)",
                "layer 'classifier': act_bits 16 (the format allows float, 8)"});
  EXPECT_FALSE(std::filesystem::exists(out));
}

// A missing or broken ONNX Runtime install: one message naming the install script, as an I/O error (exit 2).
TEST(OnnxRuntime, AMissingOrBrokenInstallNamesTheInstallScript) {
  testing::TempDir tmp;
  std::filesystem::create_directories(tmp.file("broken"));
  std::ofstream(tmp.file("broken/package.json")) << R"({"name": "onnxruntime-node", "main": "index.js"})";
  std::ofstream(tmp.file("broken/index.js")) << "throw new Error('a broken install');";
  std::ofstream(tmp.file("m.onnx")) << "unused";
  const at::Tensor x = torch::zeros({1, 3});
  for (const auto& [module, says] :
       {std::pair<std::string, std::string>{tmp.file("none"), "not found"}, {tmp.file("broken"), "is broken"}}) {
    setenv("ADZE_ORT_MODULE", module.c_str(), 1);
    expect_error([&] { run_in_onnx_runtime(tmp.file("m.onnx"), x, 1); }, ErrorKind::kIo, {says, "install-ort.sh"});
  }
  unsetenv("ADZE_ORT_MODULE");
}

// Found with a randomly initialised MobileNet-V2, whose logits are tiny: identical outputs have a cosine of 1 at
// any scale (a float32 cosine with a clamped denominator said 0.32).
TEST(Agreement, CosineIsOneForIdenticalOutputsAtAnyScale) {
  torch::manual_seed(0);
  for (double scale : {1e-30, 1e-12, 1.0, 1e12}) {
    Agreement a;
    const at::Tensor x = torch::randn({4, 1000}) * scale;
    a.add(x, x.clone());
    EXPECT_EQ(a.cosine(), 1.0) << scale;
    EXPECT_TRUE(std::isinf(a.sqnr_db()));
    EXPECT_EQ(a.max_abs, 0.0);
  }
  Agreement zero, one_zero, opposite;
  zero.add(torch::zeros({3}), torch::zeros({3}));
  one_zero.add(torch::ones({3}), torch::zeros({3}));
  opposite.add(torch::ones({3}), -torch::ones({3}));
  EXPECT_EQ(zero.cosine(), 1.0);
  EXPECT_EQ(one_zero.cosine(), 0.0);
  EXPECT_EQ(opposite.cosine(), -1.0);
  EXPECT_NEAR(opposite.sqnr_db(), 10 * std::log10(3.0 / 12.0), 1e-12);
}

}  // namespace
}  // namespace adze
