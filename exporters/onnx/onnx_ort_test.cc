// What ONNX Runtime makes of adze's ONNX exports: the graph it runs after its optimizations (its
// optimizedModelFilePath) must compute every quantized layer in an integer kernel, and still the simulation.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <set>

#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "core/files.h"
#include "examples/reference/models.h"
#include "exporters/exporter.h"
#include "exporters/onnx/onnx_runtime.h"
#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;
using Json = nlohmann::ordered_json;

// A model compressed through the library as `adze compress` would (calibrated on standard-normal samples),
// saved and read back.
CompressedModel compress(const testing::TempDir& tmp, Model m, const std::string& source, const char* plan,
                         const char* pipeline) {
  const Shape shape = m.input().shape;
  torch::manual_seed(0);
  std::vector<int64_t> dims(shape.begin(), shape.end());
  dims[0] = 8 * shape[0];
  Dataset data;
  data.inputs = torch::randn(dims);
  data.targets = torch::zeros({dims[0]}, torch::kLong);
  data.num_classes = 10;
  CompressionContext c;
  c.model = &m;
  c.table = build_layer_table(m);
  c.data = &data;
  c.plan = resolve_plan(parse_plan(Json::parse(plan), "plan.json"), c.table, "plan.json");
  const auto records = run_pipeline(parse_pipeline(Json::parse(pipeline), "p.json"), c);
  save_compressed(m, c.plan, c.encodings, make_report(c, records), source, tmp.file("c"));
  return load_compressed(tmp.file("c"), shape[0]);
}

struct Compressed {
  testing::TempDir tmp;
  CompressedModel model;
  /// A Python-made fixture.
  Compressed(const std::string& file, const Shape& shape, const char* plan, const char* pipeline)
      : model(compress(tmp, load_torchscript(fixture(file), {shape, "float32"}), file, plan, pipeline)) {}
  Compressed(Model m, const char* plan, const char* pipeline)
      : model(compress(tmp, std::move(m), "m", plan, pipeline)) {}
  std::string export_onnx(const nlohmann::json& options, const std::string& name = "m.onnx") const {
    const std::string out = tmp.file(name);
    export_model(model, "onnx", options, out);
    return out;
  }
};

constexpr const char* kW8A8 = R"({"defaults": {"weight_bits": 8, "act_bits": 8}})";
constexpr const char* kCalibrated = R"({"passes": ["fold-bn", "quantize.weights", "quantize.calibrate"]})";

int count(const torch::jit::Graph& g, c10::Symbol kind) {
  int n = 0;
  for (const torch::jit::Node* node : g.nodes()) n += node->kind() == kind;
  return n;
}

double cosine(const at::Tensor& a, const at::Tensor& b) {
  return torch::cosine_similarity(a.reshape({1, -1}), b.reshape({1, -1})).item<double>();
}

// W8A8 ResNet-18 and MobileNet-V2 (torchvision's architectures at reduced width): every convolution becomes
// QLinearConv, every residual add QLinearAdd, the classifier QGemm; no weight is left dequantized to float.
TEST(OnnxForOrt, W8A8ConvNetsRunEveryLayerInIntegerKernels) {
  for (const char* file : {"resnet18_w4_traced.pt", "mobilenet_v2_traced.pt"}) {
    SCOPED_TRACE(file);
    const Compressed c(file, {1, 3, 32, 32}, kW8A8, kCalibrated);
    const auto& g = c.model.model.graph();
    const int convs = count(g, c10::aten::_convolution), adds = count(g, c10::aten::add) + count(g, c10::aten::add_);
    ASSERT_GT(adds, 0);
    for (const char* target : {"portable", "vnni"}) {
      SCOPED_TRACE(target);
      const std::string onnx = c.export_onnx({{"ort_target", target}}, std::string(target) + ".onnx");
      const OrtGraph ort = ort_optimized_graph(onnx);
      EXPECT_TRUE(ort.float_weights.empty()) << "first: " << ort.float_weights.front();
      EXPECT_EQ(ort.ops.count("Conv") + ort.ops.count("FusedConv") + ort.ops.count("Gemm"), 0u);
      EXPECT_EQ(ort.ops.count("QLinearConv") ? ort.ops.at("QLinearConv") : 0, convs);
      EXPECT_EQ(ort.ops.count("QLinearAdd") ? ort.ops.at("QLinearAdd") : 0, adds);
      EXPECT_EQ(ort.ops.count("QGemm") ? ort.ops.at("QGemm") : 0, 1);
      torch::manual_seed(1);
      const at::Tensor x = torch::randn({4, 3, 32, 32});
      const at::Tensor simulated = c.model.model.forward(x);
      const at::Tensor deployed = run_in_onnx_runtime(onnx, x, 1).view_as(simulated);
      EXPECT_GT(cosine(deployed, simulated), 0.999);
    }
  }
}

int op_count(const OrtGraph& g, const char* op) { return g.ops.count(op) ? g.ops.at(op) : 0; }

// W8A8 transformers: every linear layer over a sequence's rows becomes QGemm (rows of [batch, tokens, K] as a
// [rows, K] Gemm), with its bias inside, whether traced as aten::linear (the Python-made nn.TransformerEncoder)
// or as matmul(x, t(W)) + b (the reference models' block, as fortune-gpt's); no weight is left dequantized to
// float, and only the attention's products of two activations stay float MatMuls.
TEST(OnnxForOrt, W8A8TransformersRunEveryLinearLayerAsQGemm) {
  torch::manual_seed(4);
  reference::TransformerBlock block(32, 2, 64, true, 16);
  block->eval();
  const Compressed gpt_block(
      trace_module(
          *block, [&](const at::Tensor& x) { return block->forward(x); }, {{1, 16, 32}, "float32"}, "block"),
      kW8A8, kCalibrated);
  const Compressed encoder("transformer_traced.pt", {1, 16, 32}, kW8A8, kCalibrated);
  for (const auto& [c, linears] : {std::pair<const Compressed*, int>{&gpt_block, 4}, {&encoder, 9}}) {
    SCOPED_TRACE(linears);
    torch::manual_seed(1);
    const at::Tensor x = torch::randn({1, 16, 32});
    const at::Tensor simulated = c->model.model.forward(x);
    for (const char* target : {"portable", "vnni"}) {
      SCOPED_TRACE(target);
      const std::string onnx = c->export_onnx({{"ort_target", target}}, std::string(target) + ".onnx");
      const OrtGraph ort = ort_optimized_graph(onnx);
      EXPECT_TRUE(ort.float_weights.empty()) << "first: " << ort.float_weights.front();
      EXPECT_EQ(op_count(ort, "QGemm"), linears);
      EXPECT_EQ(op_count(ort, "Gemm") + op_count(ort, "MatMulIntegerToFloat") + op_count(ort, "BiasGelu"), 0);
      EXPECT_GT(cosine(run_in_onnx_runtime(onnx, x, 1).view_as(simulated), simulated), 0.999);
    }
  }
}

// A linear layer traced as matmul + add, W8A8: its bias sits on the int32 accumulator's grid in the simulation
// too, so ONNX Runtime's QGemm (float output: the int32 sum, bias included, times input scale · weight scale)
// computes the simulation's numbers up to float rounding, far within one step of that grid.
TEST(OnnxForOrt, AMatmulPlusBiasLayerComputesTheSimulationsNumbers) {
  torch::manual_seed(2);
  torch::nn::Linear linear(48, 24);
  Compressed c(trace_module(
                   *linear, [&](const at::Tensor& x) { return torch::matmul(x, linear->weight.t()) + linear->bias; },
                   {{1, 8, 48}, "float32"}, "linear"),
               kW8A8, kCalibrated);
  const Encoding& e = c.model.encodings.begin()->second;
  const NamedTensor* act_scale = nullptr;
  for (const auto& t : c.model.model.tensors())
    if (t.name.find("act_scale") != std::string::npos) act_scale = &t;
  ASSERT_NE(act_scale, nullptr);
  const double step = (e.scale.min() * act_scale->value.item<float>()).item<double>();
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({1, 8, 48});
  const at::Tensor simulated = c.model.model.forward(x);
  const std::string onnx = c.export_onnx({{"ort_target", "vnni"}});
  EXPECT_EQ(op_count(ort_optimized_graph(onnx), "QGemm"), 1);
  const double error = (run_in_onnx_runtime(onnx, x, 1).view_as(simulated) - simulated).abs().max().item<double>();
  EXPECT_LT(error, 0.05 * step) << "step " << step;

  // A bias off the grid (a model compressed before calibration rounded this kind of bias) goes out in float: the
  // simulation's numbers still, in a layer ORT cannot fuse.
  Model& m = c.model.model;
  const int64_t b = m.find_tensor("bias");
  ASSERT_GE(b, 0);
  m.set_tensor(b, m.tensors()[static_cast<std::size_t>(b)].value + 0.3 * step);
  const at::Tensor moved = m.forward(x);
  const std::string off = c.export_onnx({{"ort_target", "vnni"}}, "off-grid.onnx");
  EXPECT_EQ(op_count(ort_optimized_graph(off), "QGemm"), 0);
  const auto onnx_exporter = exporter_registry().create("onnx", nlohmann::json::object(), "--format");
  EXPECT_TRUE(onnx_exporter->written_notes(onnx).empty());
  const std::vector<std::string> notes = onnx_exporter->written_notes(off);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("1 quantized layer(s) keep a float bias"), std::string::npos) << notes[0];
  EXPECT_LT((run_in_onnx_runtime(off, x, 1).view_as(moved) - moved).abs().max().item<double>(), 0.05 * step);
}

// A Python-traced nn.TransformerEncoder with INT4 weights only: its linear layers over 16 tokens run as
// DynamicQuantizeMatMul, the classifier over one row as MatMulNBits; with float activations, fp32 on decoded
// weights, exactly the simulation.
TEST(OnnxForOrt, WeightOnlyLinearLayersTakeIntegerForms) {
  const Compressed c("transformer_traced.pt", {1, 16, 32}, R"({"defaults": {"weight_bits": 4}})",
                     R"({"passes": ["quantize.weights"]})");
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({3, 16, 32});
  const at::Tensor simulated = c.model.model.forward(x);

  const std::string dynamic = c.export_onnx(nlohmann::json::object(), "dynamic.onnx");
  const OrtGraph ort = ort_optimized_graph(dynamic);
  EXPECT_TRUE(ort.float_weights.empty());
  EXPECT_EQ(ort.ops.count("MatMulNBits") ? ort.ops.at("MatMulNBits") : 0, 1);  // the head: one row
  EXPECT_EQ(ort.ops.count("DynamicQuantizeMatMul") ? ort.ops.at("DynamicQuantizeMatMul") : 0, 2 * 4);
  EXPECT_GT(cosine(run_in_onnx_runtime(dynamic, x, 1).view_as(simulated), simulated), 0.99);

  // Tokens of very different magnitudes: one range for all the rows of a call (dynamic-tensor) leaves the small
  // ones few codes; each row's own range (the default) does not, at the same fused integer kernels.
  at::Tensor uneven = x.clone();
  uneven.select(1, 3).mul_(300);
  const at::Tensor want = c.model.model.forward(uneven);
  const std::string per_tensor = c.export_onnx({{"activations", "dynamic-tensor"}}, "per-tensor.onnx");
  const OrtGraph tensor_ort = ort_optimized_graph(per_tensor);
  EXPECT_EQ(tensor_ort.ops.at("DynamicQuantizeMatMul"), ort.ops.at("DynamicQuantizeMatMul"));
  EXPECT_EQ(tensor_ort.ops.count("ReduceMax"), 0u);
  EXPECT_GT(ort.ops.count("ReduceMax") ? ort.ops.at("ReduceMax") : 0, 0);
  const auto error = [&](const std::string& file) {
    return (run_in_onnx_runtime(file, uneven, 1).view_as(want) - want).norm().item<double>() /
           want.norm().item<double>();
  };
  const double row_error = error(dynamic), tensor_error = error(per_tensor);
  EXPECT_LT(row_error, 0.5 * tensor_error) << row_error << " against " << tensor_error;

  const std::string exact = c.export_onnx({{"activations", "float"}}, "float.onnx");
  const OrtGraph plain = ort_optimized_graph(exact, "basic");
  EXPECT_EQ(plain.ops.count("MatMulNBits") + plain.ops.count("DynamicQuantizeLinear"), 0u);
  const at::Tensor fp32 = run_in_onnx_runtime(exact, x, 1, "basic").view_as(simulated);
  EXPECT_LT((fp32 - simulated).abs().max().item<double>(), 1e-4 * simulated.abs().max().item<double>());
}

// Decomposed layers go out as their factor chains (onnx_factored.h), never as the dense product: with float
// activations ORT computes the simulation's numbers, with the weight-only integer forms an approximation of them.
TEST(OnnxForOrt, DecomposedLayersRunAsTheirFactors) {
  const Compressed c("transformer_traced.pt", {1, 16, 32}, R"({"layers": {
      "*.linear1": {"decompose": "monarch", "blocks": 4},
      "*.linear2": {"weight_bits": 4, "decompose": "lowrank", "rank": 8},
      "*.in_proj_weight": {"decompose": "lowrank", "rank_ratio": 0.5},
      "*.out_proj": {"weight_bits": 4, "decompose": "smartdeal", "basis": 4}}})",
                     R"({"passes": ["quantize.weights"]})");
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({3, 16, 32});
  const at::Tensor simulated = c.model.model.forward(x);
  const std::string exact = c.export_onnx({{"activations", "float"}}, "float.onnx");
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(read_file_text(exact)));
  std::set<std::string> names;
  for (const auto& t : proto.graph().initializer()) names.insert(t.name());
  for (const char* layer : {"encoder.layers.0.linear1.weight", "encoder.layers.1.linear2.weight",
                            "encoder.layers.0.self_attn.in_proj_weight"})
    EXPECT_EQ(names.count(std::string(layer) + ".t") + names.count(layer), 0u) << layer << " went out dense";
  EXPECT_EQ(names.count("encoder.layers.0.linear1.weight.blocks_in"), 1u);
  EXPECT_EQ(names.count("encoder.layers.0.linear1.weight.blocks_out"), 1u);
  EXPECT_EQ(names.count("encoder.layers.1.linear2.weight.first.t"), 1u);
  EXPECT_EQ(names.count("encoder.layers.1.linear2.weight.second.t"), 1u);
  const at::Tensor fp32 = run_in_onnx_runtime(exact, x, 1, "basic").view_as(simulated);
  EXPECT_LT((fp32 - simulated).abs().max().item<double>(), 1e-4 * simulated.abs().max().item<double>());
  const std::string dynamic = c.export_onnx(nlohmann::json::object(), "dynamic.onnx");
  const OrtGraph ort = ort_optimized_graph(dynamic);
  EXPECT_EQ(ort.ops.count("DynamicQuantizeMatMul") ? ort.ops.at("DynamicQuantizeMatMul") : 0, 2 * 2);  // linear2's
  EXPECT_GT(cosine(run_in_onnx_runtime(dynamic, x, 1).view_as(simulated), simulated), 0.99);

  // A low-rank convolution: a 3x3 Conv to r channels, then a 1x1 Conv.
  const Compressed cnn("cnn_bn_traced.pt", {1, 3, 16, 16},
                       R"({"layers": {"features.0": {"decompose": "lowrank", "rank": 2}}})",
                       R"({"passes": ["fold-bn", "quantize.weights"]})");
  const at::Tensor image = torch::randn({2, 3, 16, 16});
  const at::Tensor cnn_simulated = cnn.model.model.forward(image);
  const std::string conv = cnn.export_onnx(nlohmann::json::object(), "conv.onnx");
  EXPECT_EQ(ort_optimized_graph(conv, "basic").ops.at("Conv"), 3);  // features.0 as two, features.3
  const at::Tensor conv_out = run_in_onnx_runtime(conv, image, 1, "basic").view_as(cnn_simulated);
  EXPECT_LT((conv_out - cnn_simulated).abs().max().item<double>(), 1e-4 * cnn_simulated.abs().max().item<double>());
}

// The same codes either way: signed for VNNI CPUs, moved by 128 into u8 (zero point 128) for portable exports.
TEST(OnnxForOrt, TargetsStoreTheSameCodes) {
  const Compressed c("cnn_bn_traced.pt", {1, 3, 16, 16}, kW8A8, kCalibrated);
  std::map<std::string, std::string> codes;
  for (const char* target : {"portable", "vnni"}) {
    onnx::ModelProto proto;
    ASSERT_TRUE(
        proto.ParseFromString(read_file_text(c.export_onnx({{"ort_target", target}}, std::string(target) + ".onnx"))));
    for (const auto& t : proto.graph().initializer())
      if (t.name() == "classifier.weight.codes") {
        EXPECT_EQ(t.data_type(), std::string(target) == "vnni" ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
        codes[target] = t.raw_data();
      }
  }
  ASSERT_EQ(codes.size(), 2u);
  ASSERT_EQ(codes["vnni"].size(), codes["portable"].size());
  for (std::size_t i = 0; i < codes["vnni"].size(); ++i)
    ASSERT_EQ(static_cast<uint8_t>(codes["vnni"][i] + 128), static_cast<uint8_t>(codes["portable"][i])) << i;
  expect_error(
      [&] {
        c.export_onnx({{"ort_target", "avx3"}}, "bad.onnx");
      },
      ErrorKind::kInvalidConfig, {"'ort_target' must be one of: portable, vnni, found \"avx3\""});
  expect_error(
      [&] {
        c.export_onnx({{"activations", "int4"}}, "bad.onnx");
      },
      ErrorKind::kInvalidConfig, {"'activations' must be one of: dynamic, dynamic-tensor, float, found \"int4\""});
}

}  // namespace
}  // namespace adze
