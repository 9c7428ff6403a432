#include "model/frontend.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>

#include "core/files.h"
#include "core/zip_bounds.h"
#include "model/layer_table.h"
#include "model/torchscript_io.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::TempDir;

// A scripted module built in C++ with a bool attribute, an Optional[Tensor] attribute set to None, control flow
// and a batch-dependent view: the things on which LowerGraph-based loaders fail.
torch::jit::Module make_scripted_mlp() {
  torch::jit::Module m("ScriptedMlp");
  torch::manual_seed(3);
  m.register_parameter("w1", torch::randn({16, 12}), false);
  m.register_parameter("b1", torch::randn({16}), false);
  m.register_parameter("w2", torch::randn({4, 16}), false);
  m.register_buffer("offset", torch::randn({4}));
  m.register_attribute("use_relu", c10::BoolType::get(), true);
  m.register_attribute("extra", c10::OptionalType::create(c10::TensorType::get()), c10::IValue());
  m.define(R"(
def forward(self, x):
    h = torch.matmul(x.view(x.size(0), -1), self.w1.t()) + self.b1
    if self.use_relu:
        h = torch.relu(h)
    extra = self.extra
    if extra is not None:
        h = h + extra
    return torch.matmul(h, self.w2.t()) + self.offset
)");
  return m;
}

at::Tensor expected_tensor(const std::string& key) {
  auto dict = torch::pickle_load(read_file_bytes(fixture("expected.pt"))).toGenericDict();
  return dict.at(key).toTensor();
}

TEST(LoadTorchScript, ScriptedModuleWithBoolAndNoneAttributesMatchesItsForward) {
  TempDir dir;
  auto module = make_scripted_mlp();
  module.save(dir.file("mlp.pt"));
  Model model = load_torchscript(dir.file("mlp.pt"), {{4, 3, 4}, "float32"});
  at::Tensor x = torch::randn({4, 3, 4});
  EXPECT_TRUE(torch::allclose(model.forward(x), module.forward({x}).toTensor(), 1e-5, 1e-6));
  ASSERT_EQ(model.tensors().size(), 4u);
  EXPECT_EQ(model.tensors()[0].name, "w1");
  EXPECT_FALSE(model.tensors()[3].is_parameter);  // the buffer
  EXPECT_EQ(model.parameter_count(), 16 * 12 + 16 + 4 * 16);
}

TEST(LoadTorchScript, AnyBatchSizeIsPaddedOrSplitToTheTracedOne) {
  TempDir dir;
  auto module = make_scripted_mlp();
  module.save(dir.file("mlp.pt"));
  Model model = load_torchscript(dir.file("mlp.pt"), {{4, 12}, "float32"});
  for (int64_t batch : {1, 3, 4, 9}) {
    at::Tensor x = torch::randn({batch, 12});
    at::Tensor y = model.forward(x);
    ASSERT_EQ(y.size(0), batch);
    EXPECT_TRUE(torch::allclose(y, module.forward({x}).toTensor(), 1e-5, 1e-6)) << "batch " << batch;
  }
  expect_error(
      [&] {
        model.forward(torch::randn({2, 13}));
      },
      ErrorKind::kInvalidArgument, {"dimension 1 is 13", "expected 12"});
}

class PythonFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonFixture, CnnMatchesWhatPythonComputed) {
  Model model = load_torchscript(fixture(GetParam() + ".pt"), {{4, 3, 16, 16}, "float32"});
  at::Tensor out = model.forward(expected_tensor("images"));
  EXPECT_LT((out - expected_tensor("cnn_out")).abs().max().item<double>(), 1e-5);
}
INSTANTIATE_TEST_SUITE_P(TraceAndScript, PythonFixture, ::testing::Values("cnn_bn_traced", "cnn_bn_scripted"));

class PythonEncoder : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonEncoder, TransformerEncoderLayerMatchesPythonAndExposesItsLinears) {
  Model model = load_torchscript(fixture(GetParam() + ".pt"), {{2, 5, 16}, "float32"});
  at::Tensor out = model.forward(expected_tensor("tokens"));
  EXPECT_LT((out - expected_tensor("encoder_out")).abs().max().item<double>(), 1e-5);
  const LayerTable table = build_layer_table(model);
  ASSERT_EQ(table.layers.size(), 4u);  // in_proj, out_proj, linear1, linear2: not one fused op
  EXPECT_TRUE(table.unknown_ops.empty());
}
INSTANTIATE_TEST_SUITE_P(TraceAndScript, PythonEncoder, ::testing::Values("encoder_traced", "encoder_scripted"));

TEST(Model, GradientsFlowToParametersOnly) {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{4, 3, 16, 16}, "float32"});
  for (auto& p : model.parameters()) p.set_requires_grad(true);
  at::Tensor x = torch::randn({4, 3, 16, 16});
  model.forward(x).pow(2).sum().backward();
  for (const auto& t : model.tensors()) {
    if (t.is_parameter) {
      EXPECT_TRUE(t.value.grad().defined()) << t.name;
    } else {
      EXPECT_FALSE(t.value.requires_grad()) << t.name;
      EXPECT_FALSE(t.value.grad().defined()) << t.name;
    }
  }
  EXPECT_FALSE(x.grad().defined());
  for (auto& p : model.parameters()) p.set_requires_grad(false);
}

TEST(LoadTorchScript, RejectsMissingEmptyTruncatedAndForeignFiles) {
  TempDir dir;
  expect_error(
      [&] {
        load_torchscript(dir.file("missing.pt"), {{1, 3}});
      },
      ErrorKind::kIo, {"missing.pt", "no such file"});
  std::ofstream(dir.file("empty.pt")).close();
  expect_error([&] { load_torchscript(dir.file("empty.pt"), {{1, 3}}); }, ErrorKind::kIo, {"empty.pt", "empty"});
  std::ofstream(dir.file("text.pt")) << "this is not a model\n";
  expect_error(
      [&] {
        load_torchscript(dir.file("text.pt"), {{1, 3}});
      },
      ErrorKind::kIo, {"text.pt", "not a readable TorchScript"});
  auto bytes = read_file_bytes(fixture("cnn_bn_traced.pt"));
  std::ofstream(dir.file("truncated.pt"), std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  expect_error([&] { load_torchscript(dir.file("truncated.pt"), {{1, 3}}); }, ErrorKind::kIo, {"truncated.pt"});
  expect_error([&] { load_torchscript(dir.path(), {{1, 3}}); }, ErrorKind::kIo, {"directory"});
}

// A model whose data.pkl has BUILD find one value on the stack, its checksums mended: libtorch's unpickler would
// free memory it never allocated (the release binary aborted with "free(): invalid size").
TEST(LoadTorchScript, RefusesAPickleThatWouldCorruptTheHeap) {
  std::vector<char> bytes = read_file_bytes(fixture("cnn_bn_traced.pt"));
  int patched = 0;
  for (const ZipEntry& e : check_zip_bounds({bytes.data(), bytes.size()}, "fixture")) {
    if (e.name.size() < 9 || e.name.compare(e.name.size() - 9, 9, "/data.pkl") != 0) continue;
    const char build[] = {'\x80', '\x02', '}', 'q', '\x00', '(', 'b', '.'};  // what follows STOP is not read
    std::copy(build, build + sizeof build, bytes.begin() + static_cast<std::ptrdiff_t>(e.offset));
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + e.offset), static_cast<uInt>(e.size)));
    char old_crc[4], new_crc[4];
    for (int i = 0; i < 4; ++i) {
      old_crc[i] = static_cast<char>(e.crc >> (8 * i));
      new_crc[i] = static_cast<char>(crc >> (8 * i));
    }
    for (auto at = std::search(bytes.begin(), bytes.end(), old_crc, old_crc + 4); at != bytes.end();
         at = std::search(at, bytes.end(), old_crc, old_crc + 4), ++patched)
      at = std::copy(new_crc, new_crc + 4, at);  // the local header's copy and the directory's
  }
  ASSERT_EQ(patched, 2);
  TempDir dir;
  std::ofstream(dir.file("build.pt"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_error(
      [&] {
        load_torchscript(dir.file("build.pt"), {{1, 3, 16, 16}});
      },
      ErrorKind::kIo,
      {"failed to read model", "build.pt", "not a readable TorchScript file",
       "an opcode that takes 2 values from a stack of 1"});
}

TEST(LoadTorchScript, NamesAnInputShapeThatDoesNotFit) {
  expect_error(
      [] {
        load_torchscript(fixture("cnn_bn_traced.pt"), {{1, 5, 16, 16}, "float32"});
      },
      ErrorKind::kInvalidArgument, {"cnn_bn_traced.pt", "1x5x16x16", "channels"});
  expect_error(
      [] {
        load_torchscript(fixture("cnn_bn_traced.pt"), {{1, 3, 16, 16}, "int8"});
      },
      ErrorKind::kInvalidArgument, {"int8", "float32 or int64"});
}

TEST(ModelCard, InputSpecIsReadFromTheCardBesideTheModelAndBadCardsAreNamed) {
  TempDir dir;
  EXPECT_FALSE(read_input_spec_beside(dir.file("m.pt")).has_value());
  std::ofstream(dir.file("m.json")) << R"({"input": {"shape": [1, 3, 16, 16], "dtype": "float32"}})";
  auto spec = read_input_spec_beside(dir.file("m.pt"));
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->shape, (Shape{1, 3, 16, 16}));
  std::ofstream(dir.file("m.json")) << R"({"input": {"shape": "1x3"}})";
  expect_error([&] { read_input_spec_beside(dir.file("m.pt")); }, ErrorKind::kInvalidConfig, {"m.json"});
  std::ofstream(dir.file("m.json")) << R"({"input": {"shape": [1, -3]}})";
  expect_error([&] { read_input_spec_beside(dir.file("m.pt")); }, ErrorKind::kInvalidConfig, {"m.json", "1x-3"});
  std::ofstream(dir.file("m.json")) << R"({"input": )";
  expect_error([&] { read_input_spec_beside(dir.file("m.pt")); }, ErrorKind::kInvalidConfig, {"m.json"});
}

TEST(TraceModule, CppModuleBecomesAModelSharingItsTensors) {
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(6, 8), torch::nn::ReLU(), torch::nn::Linear(8, 3));
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{2, 6}, "float32"}, "mlp");
  at::Tensor x = torch::randn({5, 6});
  EXPECT_TRUE(torch::allclose(model.forward(x), net->forward(x)));
  EXPECT_EQ(model.tensors()[0].name, "0.weight");
  EXPECT_TRUE(model.tensors()[0].value.is_same(net->named_parameters()["0.weight"]));
}

TEST(SaveTorchScript, RoundTripKeepsNamesAndOutputs) {
  TempDir dir;
  Model model = load_torchscript(fixture("cnn_bn_scripted.pt"), {{4, 3, 16, 16}, "float32"});
  save_torchscript(model, dir.file("again.pt"));
  Model again = load_torchscript(dir.file("again.pt"), {{4, 3, 16, 16}, "float32"});
  at::Tensor x = torch::randn({4, 3, 16, 16});
  EXPECT_TRUE(torch::equal(model.forward(x), again.forward(x)));
  ASSERT_EQ(model.tensors().size(), again.tensors().size());
  for (std::size_t i = 0; i < model.tensors().size(); ++i) {
    EXPECT_EQ(model.tensors()[i].name, again.tensors()[i].name);
    EXPECT_TRUE(torch::equal(model.tensors()[i].value, again.tensors()[i].value));
  }
}

TEST(SaveTorchScript, SameModelGivesTheSameBytes) {
  TempDir dir;
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{1, 3, 16, 16}, "float32"});
  save_torchscript(model, dir.file("a.pt"));
  save_torchscript(model, dir.file("b.pt"));
  EXPECT_EQ(read_file_bytes(dir.file("a.pt")), read_file_bytes(dir.file("b.pt")));
}

}  // namespace
}  // namespace adze
