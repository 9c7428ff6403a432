#include "model/batch_symbolic.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "model/frontend.h"
#include "model/layer_table.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::fixture;

InputSpec tokens(int64_t batch) { return {{batch, 16, 32}, "float32"}; }

at::Tensor sample(const Shape& shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return at::normal(0.0, 1.0, shape, gen);
}

// Runs `graph`, which has the inputs of model.graph(), on x with the model's tensors: at x's own batch size.
at::Tensor run_graph(const std::shared_ptr<torch::jit::Graph>& graph, const Model& model, const at::Tensor& x) {
  torch::jit::Code code(graph, "generic");
  torch::jit::Stack stack{x};
  const auto inputs = model.graph().inputs();
  for (std::size_t i = 1; i < inputs.size(); ++i) stack.emplace_back(model.tensor_of(inputs[i])->value);
  torch::jit::InterpreterState(code).run(stack);
  const c10::IValue& out = stack.at(0);
  return out.isTensor() ? out.toTensor() : out.toTupleRef().elements().at(0).toTensor();
}

std::vector<const torch::jit::Node*> annotated_constants(const torch::jit::Graph& graph) {
  std::vector<const torch::jit::Node*> out;
  for (const torch::jit::Node* n : graph.nodes())
    if (!batch_affine_of(n).empty()) out.push_back(n);
  return out;
}

// The generic graph at each batch size computes what the model traced at that batch size computes.
void expect_generic_matches_traces(const Model& model, const std::function<Model(int64_t)>& trace_at,
                                   const std::vector<int64_t>& batches) {
  const std::shared_ptr<torch::jit::Graph> generic = batch_generic_graph(model);
  ASSERT_TRUE(generic);
  for (int64_t n : batches) {
    SCOPED_TRACE("batch " + std::to_string(n));
    Shape shape = model.input().shape;
    shape[0] = n;
    const at::Tensor x = sample(shape, 5);
    const at::Tensor expected = trace_at(n).forward(x);
    const at::Tensor got = run_graph(generic, model, x);
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<double>();
  }
}

TEST(BatchSymbolic, PythonTracedTransformerIsBatchGenericWithAttentionReshapesFitted) {
  const std::string path = fixture("transformer_traced.pt");
  const Model model = load_torchscript(path, tokens(7));
  ASSERT_TRUE(model.batch_dependence().generic) << model.batch_dependence().why_not;
  // Multi-head attention views q, k and v as [seq, batch*heads, head_dim] = [16, 4n, 8] in each of the two
  // layers; the tracer records each size list as a prim::ListConstruct of int constants.
  int heads_reshapes = 0;
  for (const torch::jit::Node* n : annotated_constants(model.graph())) {
    const std::vector<BatchAffine> f = batch_affine_of(n);
    const c10::IValue value = *torch::jit::toIValue(n->output());  // the constant still evaluates as traced
    ASSERT_TRUE(value.isIntList() || value.isInt());
    const std::vector<int64_t> ints = value.isInt() ? std::vector<int64_t>{value.toInt()} : value.toIntVector();
    ASSERT_EQ(ints.size(), f.size());
    for (std::size_t e = 0; e < f.size(); ++e) EXPECT_EQ(f[e].at(7), ints[e]);
    if (f.size() == 1 && f[0].a == 4 && f[0].b == 0) ++heads_reshapes;
  }
  EXPECT_EQ(heads_reshapes, 6);
  expect_generic_matches_traces(model, [&](int64_t n) { return load_torchscript(path, tokens(n)); }, {1, 7, 32});
}

TEST(BatchSymbolic, OtherPythonFixturesAreBatchGeneric) {
  for (const auto& [file, shape] : std::vector<std::pair<std::string, Shape>>{{"resnet18_w4_traced.pt", {2, 3, 32, 32}},
                                                                              {"encoder_traced.pt", {2, 10, 16}}}) {
    SCOPED_TRACE(file);
    const Model model = load_torchscript(fixture(file), {shape, "float32"});
    ASSERT_TRUE(model.batch_dependence().generic) << model.batch_dependence().why_not;
    expect_generic_matches_traces(model,
                                  [&, &shape = shape, &file = file](int64_t n) {
                                    Shape s = shape;
                                    s[0] = n;
                                    return load_torchscript(fixture(file), {s, "float32"});
                                  },
                                  {1, 5});
  }
}

// A C++ module whose forward `f` gets a linear layer and the input.
Model trace_cpp(const std::function<at::Tensor(torch::nn::Linear&, const at::Tensor&)>& f, int64_t batch) {
  torch::manual_seed(0);
  torch::nn::Linear linear(12, 4);
  return trace_module(
      *linear, [&](const at::Tensor& x) { return f(linear, x); }, {{batch, 3, 4}, "float32"}, "m");
}

TEST(BatchSymbolic, ViewOnBatchSizeOfCppModuleIsFitted) {
  const auto forward = [](torch::nn::Linear& l, const at::Tensor& x) { return l(x.view({x.size(0), -1})); };
  const Model model = trace_cpp(forward, 5);
  ASSERT_TRUE(model.batch_dependence().generic) << model.batch_dependence().why_not;
  // The tracer records the size list as a prim::ListConstruct of int constants: only the first is the batch.
  const auto annotated = annotated_constants(model.graph());
  ASSERT_EQ(annotated.size(), 1u);
  const std::vector<BatchAffine> f = batch_affine_of(annotated[0]);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].a, 1);
  EXPECT_EQ(f[0].b, 0);
  expect_generic_matches_traces(model, [&](int64_t n) { return trace_cpp(forward, n); }, {1, 3, 9});
}

// A batch smaller than the traced one runs at its own size where the graph allows, not padded with zeros (a
// fine-tuning batch of 64 on a model traced at 256 would compute 256 samples). A model that mixes samples shows
// which: its output at batch 2 is x − mean(x) over the two rows, where padding would average in the zeros.
TEST(BatchSymbolic, SmallerBatchRunsAtItsOwnSize) {
  const auto centred = [](torch::nn::Linear& l, const at::Tensor& x) {
    const at::Tensor y = l(x.view({x.size(0), -1}));
    return y - y.mean(0, true);
  };
  const Model model = trace_cpp(centred, 6);
  ASSERT_TRUE(model.batch_dependence().generic) << model.batch_dependence().why_not;
  torch::NoGradGuard no_grad;
  for (int64_t n : {1, 2, 5}) {
    const at::Tensor x = sample({n, 3, 4}, static_cast<uint64_t>(n));
    const at::Tensor y = model.forward(x);
    ASSERT_EQ(y.size(0), n);
    EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-6) << "batch " << n;  // centred over its own rows
  }
  // Past the traced batch: whole pieces of 6, and the rest (3) at its own size.
  const at::Tensor x = sample({9, 3, 4}, 9);
  const at::Tensor y = model.forward(x);
  EXPECT_TRUE(torch::allclose(y.slice(0, 0, 6), model.forward(x.slice(0, 0, 6))));
  EXPECT_LT(y.slice(0, 6).mean(0).abs().max().item<double>(), 1e-6);
}

TEST(BatchSymbolic, BatchSpecialisedModelsStaySpecialisedWithTheReason) {
  struct Case {
    const char* what;
    std::function<at::Tensor(torch::nn::Linear&, const at::Tensor&)> forward;
    const char* why;
    int64_t rows_at_4;  // of the output
  };
  const std::vector<Case> cases = {
      {"another op at odd batch sizes",
       [](torch::nn::Linear& l, const at::Tensor& x) {
         const at::Tensor y = l(x.flatten(1));
         return x.size(0) % 2 == 0 ? y.relu() : y.sigmoid();
       },
       "differs from the one at 4 beyond int constants", 4},
      {"an int that is not linear in the batch size",
       [](torch::nn::Linear& l, const at::Tensor& x) {
         return l(x.flatten(1)).narrow(0, 0, std::min<int64_t>(x.size(0), 2));
       },
       "no a*batch + b with integer a, b fits", 2},
      {"a forward that refuses other batch sizes",
       [](torch::nn::Linear& l, const at::Tensor& x) {
         TORCH_CHECK(x.size(0) == 4, "this model takes batches of 4");
         return l(x.flatten(1));
       },
       "fails at batch size 1: this model takes batches of 4", 4},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Model model = trace_cpp(c.forward, 4);  // loads as before: no error
    EXPECT_FALSE(model.batch_dependence().generic);
    EXPECT_NE(model.batch_dependence().why_not.find(c.why), std::string::npos) << model.batch_dependence().why_not;
    EXPECT_TRUE(annotated_constants(model.graph()).empty());
    EXPECT_EQ(batch_generic_graph(model), nullptr);
    EXPECT_EQ(model.forward(sample({4, 3, 4}, 1)).size(0), c.rows_at_4);
  }
}

TEST(BatchSymbolic, AnnotationsSurviveCloneAndConstantPooling) {
  const std::string path = fixture("transformer_traced.pt");
  const Model model = load_torchscript(path, tokens(1));  // batch 1: most batch-dependent ints equal plain ones
  ASSERT_TRUE(model.batch_dependence().generic) << model.batch_dependence().why_not;
  const std::size_t annotated = annotated_constants(model.graph()).size();
  ASSERT_GT(annotated, 0u);
  const Model copy = model.clone();
  EXPECT_TRUE(copy.batch_dependence().generic);
  EXPECT_EQ(annotated_constants(copy.graph()).size(), annotated);

  // Pooling merges equal constants, but never a batch-dependent one with a plain one of the same value.
  std::shared_ptr<torch::jit::Graph> pooled = model.graph().copy();
  const std::size_t nodes_before = std::distance(pooled->nodes().begin(), pooled->nodes().end());
  torch::jit::ConstantPooling(pooled);
  EXPECT_LT(static_cast<std::size_t>(std::distance(pooled->nodes().begin(), pooled->nodes().end())), nodes_before);
  const Model pooled_model = model.with_graph(pooled);
  EXPECT_GT(annotated_constants(pooled_model.graph()).size(), 0u);
  expect_generic_matches_traces(pooled_model, [&](int64_t n) { return load_torchscript(path, tokens(n)); }, {6});
}

TEST(BatchSymbolic, CompressedTransformerLoadsBackAtOtherBatchSizes) {
  testing::TempDir tmp;
  Model model = load_torchscript(fixture("transformer_traced.pt"), tokens(4));
  CompressionContext c;
  c.model = &model;
  c.table = build_layer_table(model);
  c.plan = resolve_plan(parse_plan(nlohmann::ordered_json::parse(R"({"defaults": {"weight_bits": 4}})"), "plan.json"),
                        c.table, "plan.json");
  const auto records =
      run_pipeline(parse_pipeline(nlohmann::ordered_json::parse(R"({"passes": ["quantize.weights"]})"), "p.json"), c);
  ASSERT_FALSE(c.encodings.empty());
  save_compressed(model, c.plan, c.encodings, make_report(c, records), "transformer_traced.pt", tmp.file("c"));
  for (int64_t n : {1, 7}) {
    SCOPED_TRACE("batch " + std::to_string(n));
    const CompressedModel m = load_compressed(tmp.file("c"), n);
    EXPECT_TRUE(m.model.batch_dependence().generic) << m.model.batch_dependence().why_not;
    EXPECT_EQ(m.model.traced_batch(), n);
    const at::Tensor x = sample({n, 16, 32}, 9);
    EXPECT_TRUE(torch::allclose(m.model.forward(x), model.forward(x), 1e-5, 1e-5));
  }
}

}  // namespace
}  // namespace adze
