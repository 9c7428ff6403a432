#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include "compress/activation_quant.h"
#include "compress/factored_graph.h"
#include "compress/pass.h"
#include "model/frontend.h"
#include "model/torchscript_io.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using Json = nlohmann::json;
using testing::expect_error;
using testing::fixture;

TEST(Pipeline, ParsesNamesAndObjectsAndFillsDefaults) {
  Pipeline p = parse_pipeline(
      Json::parse(R"({"passes": ["fold-bn", {"name": "eval", "options": {"label": "mid"}}, "eval"]})"), "p.json");
  ASSERT_EQ(p.steps.size(), 3u);
  EXPECT_EQ(p.steps[1].options["label"], "mid");
  EXPECT_EQ(p.steps[2].options["label"], "after");
}

TEST(Pipeline, ErrorsNameTheFileStepPassAndOption) {
  auto parse = [](const std::string& text) { parse_pipeline(Json::parse(text), "p.json"); };
  expect_error([&] { parse(R"({"passes": ["fold-bn", "sparsity.magic"]})"); }, ErrorKind::kInvalidConfig,
               {"pipeline 'p.json' step 2", "unknown pass 'sparsity.magic'", "known: fold-bn"});
  expect_error([&] { parse(R"({"passes": [{"name": "eval", "options": {"lable": "x"}}]})"); },
               ErrorKind::kInvalidConfig, {"step 1 (eval)", "unknown option 'lable'", "known: label"});
  expect_error([&] { parse(R"({"passes": [{"name": "eval", "options": {"label": 3}}]})"); }, ErrorKind::kInvalidConfig,
               {"option 'label' must be of type string"});
  expect_error([&] { parse(R"({"passes": []})"); }, ErrorKind::kInvalidConfig, {"no passes"});
  expect_error([&] { parse(R"({"steps": []})"); }, ErrorKind::kInvalidConfig, {"expected {\"passes\""});
  expect_error([&] { parse(R"({"passes": [42]})"); }, ErrorKind::kInvalidConfig, {"step 1", "expected a pass name"});
}

struct Fixture {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  CompressionContext context() {
    CompressionContext c;
    c.model = &model;
    c.table = build_layer_table(model);
    c.data = &data;
    return c;
  }
};

TEST(Pipeline, FoldSparsifyQuantizeEvaluate) {
  Fixture f;
  CompressionContext c = f.context();
  // 2:4 + INT4 on the classifier (8 inputs), INT8 elsewhere (3 and 1 input channels allow no N:M).
  Json plan =
      Json::parse(R"({"defaults": {"weight_bits": 8}, "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})");
  c.plan = resolve_plan(parse_plan(plan, "plan.json"), c.table, "plan.json");
  Pipeline p = parse_pipeline(Json::parse(R"({"passes": [{"name": "eval", "options": {"label": "before"}}, "fold-bn",
                                                        "sparsity.nm", "quantize.weights", "eval"]})"),
                              "p.json");
  std::vector<PassRecord> records = run_pipeline(p, c);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[2].name, "sparsity.nm");
  ASSERT_EQ(c.encodings.size(), 3u);
  const Encoding& fc = c.encodings.at("classifier");
  EXPECT_EQ(fc.config.weight_bits, 4);
  EXPECT_TRUE(fc.mask.defined());
  // The model now computes with exactly the decoded weights.
  for (const auto& [name, e] : c.encodings) {
    const Layer* layer = nullptr;
    for (const auto& l : c.table.layers)
      if (l.name == name) layer = &l;
    ASSERT_NE(layer, nullptr);
    EXPECT_TRUE(torch::equal(f.model.tensors()[f.model.find_tensor(layer->weight)].value, e.decode())) << name;
  }
  EXPECT_TRUE(satisfies_nm(f.model.tensors()[f.model.find_tensor("classifier.weight")].value, {2, 4}));
  EXPECT_EQ(c.metrics.at("before").samples, 40);
  EXPECT_EQ(c.metrics.at("after").samples, 40);
}

TEST(Pipeline, PassErrorsCarryTheStepAndPass) {
  Fixture f;
  CompressionContext c = f.context();
  c.plan = resolve_plan(Plan{}, c.table, "plan.json");
  c.data = nullptr;
  Pipeline p = parse_pipeline(Json::parse(R"({"passes": ["fold-bn", "eval"]})"), "p.json");
  expect_error([&] { run_pipeline(p, c); }, ErrorKind::kInvalidArgument, {"pipeline 'p.json' step 2 (eval)", "--data"});
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(ActivationQuant, CalibrateInsertsFakeQuantOnEveryLayerInputAndSurvivesSaving) {
  Fixture f;
  CompressionContext c = f.context();
  c.plan = resolve_plan(parse_plan(Json::parse(R"({"defaults": {"weight_bits": 8, "act_bits": 8}})"), "plan.json"),
                        c.table, "plan.json");
  at::Tensor x = f.data.inputs.slice(0, 0, 8);
  const at::Tensor before = f.model.forward(x);
  Pipeline p = parse_pipeline(
      Json::parse(
          R"({"passes": ["fold-bn", "quantize.weights", {"name": "quantize.calibrate", "options": {"batches": 5}}]})"),
      "p.json");
  run_pipeline(p, c);
  int fake_quants = 0;
  for (const auto* n : f.model.graph().nodes())
    if (n->kind().toQualString() == std::string("aten::fake_quantize_per_tensor_affine")) ++fake_quants;
  EXPECT_EQ(fake_quants, 3 + 1);  // one per layer input, and the average pool's (integer placement)
  for (const char* layer : {"features.0", "features.3", "classifier", "between_layers.0"}) {
    const int s = f.model.find_tensor(std::string(layer) + ".act_scale");
    ASSERT_GE(s, 0) << layer;
    EXPECT_GT(f.model.tensors()[s].value.item<float>(), 0.0f);
    EXPECT_FALSE(f.model.tensors()[s].is_parameter);
  }
  const at::Tensor after = f.model.forward(x);
  EXPECT_FALSE(torch::equal(after, before));
  EXPECT_LT((after - before).abs().max().item<double>(), 0.05 * before.abs().max().item<double>());
  EXPECT_TRUE(build_layer_table(f.model).unknown_ops.empty());
  testing::TempDir dir;
  save_torchscript(f.model, dir.file("m.pt"));
  Model again = load_torchscript(dir.file("m.pt"), {{8, 3, 16, 16}, "float32"});
  EXPECT_TRUE(torch::equal(again.forward(x), after));
}

TEST(ActivationQuant, PercentileClipsAtMostTheMinMaxRange) {
  auto scale_of = [](const std::string& method) {
    Fixture f;
    CompressionContext c = f.context();
    c.plan =
        resolve_plan(parse_plan(Json::parse(R"({"defaults": {"act_bits": 8}})"), "plan.json"), c.table, "plan.json");
    quantize_activations(c, {method, 99.0, 5});
    return f.model.tensors()[f.model.find_tensor("classifier.act_scale")].value.item<float>();
  };
  EXPECT_LE(scale_of("percentile"), scale_of("minmax"));
  // mse shrinks the min-max range by a factor in [0.30, 1.00].
  const float mse = scale_of("mse"), minmax = scale_of("minmax");
  EXPECT_LE(mse, minmax);
  EXPECT_GE(mse, 0.29f * minmax);
  EXPECT_EQ(scale_of("mse"), mse);  // deterministic
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

// One-shot 2:4 + INT4 and INT8 activations on the fixture, then `finetune` on its own data.
struct FinetuneRun {
  Fixture f;
  Model teacher = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  CompressionContext c = f.context();
  double loss_before = 0;
  std::vector<PassRecord> records;  // of the fine-tuning pass and the eval after it
  explicit FinetuneRun(const std::string& finetune) {
    c.train_data = &f.data;
    c.reference = &teacher;
    c.seed = 7;
    c.plan = resolve_plan(parse_plan(Json::parse(R"({"defaults": {"weight_bits": 8, "act_bits": 8},
        "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})"),
                                     "plan.json"),
                          c.table, "plan.json");
    run_pipeline(
        parse_pipeline(Json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights", "quantize.calibrate",
                                                          {"name": "eval", "options": {"label": "before"}}]})"),
                       "a.json"),
        c);
    records = run_pipeline(parse_pipeline(Json::parse(R"({"passes": [)" + finetune + R"(, "eval"]})"), "b.json"), c);
  }
  const at::Tensor& weight(const std::string& name) { return f.model.tensors()[f.model.find_tensor(name)].value; }
};

TEST(Finetune, SteLowersTheTrainingLossAndLeavesExactEncodings) {
  FinetuneRun r(R"({"name": "finetune.ste", "options": {"steps": 150, "lr": 1e-2, "batch_size": 8}})");
  EXPECT_LT(r.c.metrics.at("after").cross_entropy, r.c.metrics.at("before").cross_entropy - 0.05);
  for (const char* layer : {"features.0", "features.3", "classifier"})
    EXPECT_TRUE(torch::equal(r.weight(std::string(layer) + ".weight"), r.c.encodings.at(layer).decode())) << layer;
  EXPECT_TRUE(satisfies_nm(r.weight("classifier.weight"), {2, 4}));
  // The mask the one-shot step chose is kept; the latent weights are recorded for the report and later passes.
  EXPECT_EQ(r.c.latents.size(), 3u);
  for (const auto& p : r.f.model.parameters()) EXPECT_FALSE(p.requires_grad());
  // Where the steps' time went (one process: no gradient average), within the pass's own time; eval times none.
  ASSERT_EQ(r.records.size(), 2u);
  std::vector<std::string> phases;
  double timed = 0;
  for (const auto& [phase, seconds] : r.records[0].phases) {
    phases.push_back(phase);
    EXPECT_GT(seconds, 0) << phase;
    timed += seconds;
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"forward_backward", "next_batch", "project_and_update"}));
  EXPECT_LE(timed, r.records[0].seconds);
  EXPECT_TRUE(r.records[1].phases.empty());
  EXPECT_TRUE(r.c.phase_seconds.empty());
}

TEST(Finetune, SameSeedSameBytesAndDistillationChangesTheResult) {
  const std::string ste = R"({"name": "finetune.ste", "options": {"steps": 10, "lr": 1e-3, "batch_size": 8}})";
  FinetuneRun a(ste), b(ste);
  for (const auto& [name, e] : a.c.encodings) {
    EXPECT_TRUE(torch::equal(e.codes, b.c.encodings.at(name).codes)) << name;
    EXPECT_TRUE(torch::equal(e.scale, b.c.encodings.at(name).scale)) << name;
  }
  FinetuneRun kd(R"({"name": "finetune.ste", "options": {"steps": 10, "lr": 1e-3, "batch_size": 8, "distill": 0.9}})");
  EXPECT_FALSE(torch::equal(kd.weight("classifier.weight"), a.weight("classifier.weight")));
}

TEST(Finetune, AdmmEndsOnTheConstraintSet) {
  FinetuneRun r(
      R"({"name": "finetune.admm", "options": {"steps": 30, "admm_steps": 20, "admm_interval": 5, "rho": 0.01, "batch_size": 8}})");
  EXPECT_TRUE(satisfies_nm(r.weight("classifier.weight"), {2, 4}));
  EXPECT_TRUE(torch::equal(r.weight("classifier.weight"), r.c.encodings.at("classifier").decode()));
}

std::vector<std::string> tensor_names(const Model& m) {
  std::vector<std::string> names;
  for (const auto& t : m.tensors()) names.push_back(t.name);
  return names;
}

// Three steps of finetune.ste after the one-shot projection of the decomposed classifier: the model keeps its
// tensors (the factors' are gone) and holds the decoding of the Encoding, which has both factors.
const Encoding& fine_tune_factors(Fixture& f, CompressionContext& c, const std::vector<std::string>& names) {
  c.train_data = &f.data;
  {
    torch::AutoGradMode grad(true);
    run_pipeline(parse_pipeline(Json::parse(R"({"passes": ["quantize.weights",
        {"name": "finetune.ste", "options": {"steps": 3, "lr": 1e-3}}]})"),
                                "p.json"),
                 c);
  }
  EXPECT_EQ(tensor_names(f.model), names);
  const Encoding& e = c.encodings.at("classifier");
  EXPECT_EQ(e.factors.size(), 2u);
  const Layer& layer = c.table.layers.back();
  EXPECT_TRUE(torch::equal(f.model.tensors()[f.model.find_tensor(layer.weight)].value, e.decode()));
  return e;
}

// A low-rank linear layer trains through its factors: the graph computes linear(linear(x, F1), F2, b) while
// it does, and comes back to one linear on the decoded weight, with no tensors left behind.
TEST(Finetune, ALowRankLinearComputesThroughItsFactorsWhileItTrains) {
  Fixture f;
  CompressionContext c = f.context();
  c.plan = resolve_plan(
      parse_plan(Json::parse(R"({"layers": {"classifier": {"weight_bits": 8, "decompose": "lowrank", "rank": 2}}})"),
                 "plan.json"),
      c.table, "plan.json");
  const std::vector<std::string> names = tensor_names(f.model);
  const Layer& layer = c.table.layers.back();
  ASSERT_EQ(layer.name, "classifier");
  const at::Tensor x = f.data.inputs.slice(0, 0, 8);
  torch::NoGradGuard no_grad;
  const at::Tensor before = f.model.forward(x);
  {
    FactoredGraph graph(f.model);
    ASSERT_TRUE(graph.can_rewrite(layer, c.plan.layers.at("classifier")));
    const Encoding d =
        project(f.model.tensors()[f.model.find_tensor(layer.weight)].value, layer, c.plan.layers.at("classifier"));
    const std::vector<at::Tensor> factors = graph.rewrite(layer, d);
    ASSERT_EQ(factors.size(), 2u);
    EXPECT_EQ(f.model.tensors().size(), names.size() + 2);
    int linears = 0;
    for (const auto* n : f.model.graph().nodes()) linears += n->kind().toQualString() == std::string("aten::linear");
    EXPECT_EQ(linears, 2);
    // It computes what the decoded weight does.
    graph.restore();
    Model decoded = f.model.clone();
    decoded.set_tensor(decoded.find_tensor(layer.weight), d.decode());
    const at::Tensor through = [&] {
      FactoredGraph again(f.model);
      again.rewrite(layer, d);
      return f.model.forward(x);
    }();  // restored as it goes out of scope
    EXPECT_TRUE(torch::allclose(through, decoded.forward(x), 1e-5, 1e-5));
  }
  EXPECT_EQ(tensor_names(f.model), names);
  EXPECT_TRUE(torch::equal(f.model.forward(x), before));

  // A fine-tuning pass leaves the layer's Encoding with both factors, and the model holds its decoding.
  fine_tune_factors(f, c, names);
  EXPECT_EQ(c.latents.count("classifier"), 1u);
  EXPECT_EQ(c.latents.count("classifier/first"), 0u);
}

// Float factors (no weight_bits) train as plain weights through the graph: each is its own latent and its own
// encoding afterwards.
TEST(Finetune, FloatFactorsTrainAsPlainWeights) {
  Fixture f;
  CompressionContext c = f.context();
  c.plan = resolve_plan(
      parse_plan(Json::parse(R"({"layers": {"classifier": {"decompose": "lowrank", "rank": 2}}})"), "plan.json"),
      c.table, "plan.json");
  const Encoding& e = fine_tune_factors(f, c, tensor_names(f.model));
  EXPECT_TRUE(torch::allclose(c.latents.at("classifier"), e.decode(), 1e-6, 1e-6));
  bool noted = false;
  for (const auto& n : c.notes)
    noted |= n.find("1 decomposed layer(s) computed through their factors") != std::string::npos;
  EXPECT_TRUE(noted);
}

// libtorch's C++ tracer writes a linear layer as addmm(b, x, t(W)) (2-D input) or matmul(x, t(W)) (3-D).
TEST(FactoredGraph, RewritesTheFormsLibtorchTracesAndRestoresThem) {
  torch::manual_seed(3);
  for (const Shape& shape : {Shape{4, 16}, Shape{2, 3, 16}}) {
    torch::nn::Linear net(16, 12);
    Model model = trace_module(
        *net, [&](const at::Tensor& x) { return net->forward(x); }, {shape, "float32"}, "linear");
    const LayerTable table = build_layer_table(model);
    const Layer& layer = table.layers.at(0);
    LayerConfig config;
    config.decompose = Decomposition::kLowRank;
    config.rank = 3;
    const at::Tensor x = torch::randn(shape);
    torch::NoGradGuard no_grad;
    const at::Tensor before = model.forward(x);
    const std::string graph_before = model.graph().toString();
    FactoredGraph graph(model);
    ASSERT_TRUE(graph.can_rewrite(layer, config)) << model.graph().toString();
    const Encoding d = project(net->weight.detach(), layer, config);
    graph.rewrite(layer, d);
    EXPECT_TRUE(torch::allclose(model.forward(x), torch::nn::functional::linear(x, d.decode(), net->bias), 1e-5, 1e-5));
    graph.restore();
    EXPECT_EQ(model.graph().toString(), graph_before);
    EXPECT_TRUE(torch::equal(model.forward(x), before));
  }
}

// A Monarch linear layer and a low-rank convolution compute through their factors too: what the decoded
// weights compute, and the graph comes back whole.
TEST(FactoredGraph, RewritesMonarchLinearsAndLowRankConvolutions) {
  torch::manual_seed(5);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1)),
                            torch::nn::Flatten(), torch::nn::Linear(8 * 4 * 4, 16));
  const Shape shape{2, 3, 8, 8};
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {shape, "float32"}, "net");
  const LayerTable table = build_layer_table(model);
  const at::Tensor x = torch::randn({2, 3, 8, 8});
  torch::NoGradGuard no_grad;
  const at::Tensor before = model.forward(x);
  const std::string graph_before = model.graph().toString();
  std::vector<std::pair<Layer, Encoding>> done;
  FactoredGraph graph(model);
  for (const Layer& layer : table.layers) {
    LayerConfig config;
    config.decompose = layer.weight_shape.size() == 4 ? Decomposition::kLowRank : Decomposition::kMonarch;
    config.rank = 3;
    config.blocks = 4;
    ASSERT_TRUE(graph.can_rewrite(layer, config)) << layer.name << model.graph().toString();
    const Encoding d = project(model.tensors()[model.find_tensor(layer.weight)].value, layer, config);
    graph.rewrite(layer, d);
    done.emplace_back(layer, d);
  }
  const at::Tensor through = model.forward(x);
  graph.restore();
  EXPECT_EQ(model.graph().toString(), graph_before);
  EXPECT_TRUE(torch::equal(model.forward(x), before));
  Model decoded = model.clone();
  for (const auto& [layer, d] : done) decoded.set_tensor(decoded.find_tensor(layer.weight), d.decode());
  EXPECT_TRUE(torch::allclose(through, decoded.forward(x), 1e-4, 1e-5));
}

TEST(Finetune, NeedsTrainingDataAndValidOptions) {
  Fixture f;
  CompressionContext c = f.context();
  c.plan = resolve_plan(Plan{}, c.table, "plan.json");
  expect_error([&] { run_pipeline(parse_pipeline(Json::parse(R"({"passes": ["finetune.ste"]})"), "p.json"), c); },
               ErrorKind::kInvalidArgument, {"step 1 (finetune.ste)", "training data", "--data"});
  auto parse = [](const std::string& text) { return parse_pipeline(Json::parse(text), "p.json"); };
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.ste", "options": {"steps": 0}}]})"); },
               ErrorKind::kInvalidConfig, {"step 1 (finetune.ste)", "'steps' must be at least 1, found 0"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.ste", "options": {"mask": "sometimes"}}]})"); },
               ErrorKind::kInvalidConfig, {"'mask' must be one of: fixed, dynamic, found \"sometimes\""});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.ste", "options": {"weight_scales": "mse"}}]})"); },
               ErrorKind::kInvalidConfig, {"'weight_scales' must be one of: choose, learn"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.ste", "options": {"share_scales": "sometimes"}}]})"); },
               ErrorKind::kInvalidConfig, {"'share_scales' must be one of: auto, always, never"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.ste", "options": {"weight_scale_lr": -1}}]})"); },
               ErrorKind::kInvalidConfig, {"'weight_scale_lr' must be above 0, found -1"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.admm", "options": {"steps": 10, "admm_steps": 20}}]})"); },
               ErrorKind::kInvalidConfig, {"admm_steps must be at most steps"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.admm", "options": {"rho": -1}}]})"); },
               ErrorKind::kInvalidConfig, {"step 1 (finetune.admm)", "'rho' must be above 0"});
  expect_error([&] { parse(R"({"passes": [{"name": "finetune.admm", "options": {"rho": 0.5, "rho_max": 0.1}}]})"); },
               ErrorKind::kInvalidConfig, {"step 1 (finetune.admm)", "rho_max must be >= rho"});
  EXPECT_TRUE(needs_training_data(parse(R"({"passes": ["fold-bn", "finetune.admm"]})")));
  EXPECT_FALSE(needs_training_data(parse(R"({"passes": ["fold-bn", "eval"]})")));
  EXPECT_TRUE(needs_training_data(parse(R"({"passes": ["quantize.calibrate"]})")));
  expect_error([&] { parse(R"({"passes": [{"name": "quantize.calibrate", "options": {"method": "kl"}}]})"); },
               ErrorKind::kInvalidConfig,
               {"step 1 (quantize.calibrate)", "'method' must be one of: minmax, percentile, mse"});
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(Finetune, LearnedActivationScalesMoveAndEndAsPlainFakeQuant) {
  FinetuneRun keep(R"({"name": "finetune.ste", "options": {"steps": 30, "lr": 1e-3, "batch_size": 8}})");
  FinetuneRun learn(
      R"({"name": "finetune.ste", "options": {"steps": 30, "lr": 1e-3, "batch_size": 8, "act_scales": "learn", "act_scale_lr": 1e-3}})");
  auto scale = [](FinetuneRun& r) { return r.f.model.tensors()[r.f.model.find_tensor("classifier.act_scale")].value; };
  EXPECT_FALSE(torch::equal(scale(learn), scale(keep)));
  EXPECT_GT(scale(learn).item<float>(), 0.0f);
  EXPECT_FALSE(scale(learn).requires_grad());
  EXPECT_EQ(learn.f.model.tensors()[learn.f.model.find_tensor("classifier.act_zero_point")].value.scalar_type(),
            torch::kInt);
  int fixed = 0, learnable = 0;
  for (const auto* n : learn.f.model.graph().nodes()) {
    const std::string kind = n->kind().toQualString();
    fixed += kind == "aten::fake_quantize_per_tensor_affine";
    learnable += kind == "aten::_fake_quantize_learnable_per_tensor_affine";
  }
  EXPECT_EQ(fixed, 3 + 1);
  EXPECT_EQ(learnable, 0);
  // Saved and loaded, it computes the same.
  testing::TempDir dir;
  save_torchscript(learn.f.model, dir.file("m.pt"));
  const at::Tensor x = learn.f.data.inputs.slice(0, 0, 8);
  EXPECT_TRUE(torch::equal(load_torchscript(dir.file("m.pt"), {{8, 3, 16, 16}, "float32"}).forward(x),
                           learn.f.model.forward(x)));
}

}  // namespace
}  // namespace adze

namespace adze {
namespace {

TEST(Finetune, LearnedWeightScalesMoveAndTheWeightsAreTheirEncodings) {
  const std::string options = R"("steps": 30, "lr": 1e-3, "batch_size": 8)";
  FinetuneRun choose(R"({"name": "finetune.ste", "options": {)" + options + "}}");
  FinetuneRun learn(R"({"name": "finetune.ste", "options": {)" + options + R"(, "weight_scales": "learn"}})");
  FinetuneRun again(R"({"name": "finetune.ste", "options": {)" + options + R"(, "weight_scales": "learn"}})");
  for (const char* layer : {"features.0", "features.3", "classifier"}) {
    const Encoding& e = learn.c.encodings.at(layer);
    EXPECT_TRUE(torch::equal(learn.weight(std::string(layer) + ".weight"), e.decode())) << layer;
    EXPECT_FALSE(torch::equal(e.scale, choose.c.encodings.at(layer).scale)) << layer;
    // Chosen afresh from the final latent weights, the scales would differ too: these are the learned ones.
    const auto& layers = learn.c.table.layers;
    const auto it = std::find_if(layers.begin(), layers.end(), [&](const Layer& l) { return l.name == layer; });
    ASSERT_NE(it, layers.end());
    const Encoding rechosen = project(learn.c.latents.at(layer), *it, learn.c.plan.layers.at(layer), e.structure());
    EXPECT_FALSE(torch::equal(e.scale, rechosen.scale)) << layer;
    EXPECT_TRUE(torch::equal(e.scale, again.c.encodings.at(layer).scale)) << layer;  // same seed, same scales
  }
  EXPECT_TRUE(satisfies_nm(learn.weight("classifier.weight"), {2, 4}));
  EXPECT_LT(learn.c.metrics.at("after").cross_entropy, learn.c.metrics.at("before").cross_entropy);
}

}  // namespace
}  // namespace adze
