#include "examples/reference/reference.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "data/eval.h"
#include "examples/reference/models.h"
#include "model/fold_bn.h"
#include "model/frontend.h"
#include "model/layer_table.h"
#include "model/torchscript_io.h"
#include "tests/test_util.h"

namespace adze::reference {
namespace {

using adze::testing::TempDir;

TEST(Reference, ShortTrainingSavesALoadableModelAndCardThenHitsTheCache) {
  TempDir dir;
  TrainOptions options;
  options.cache_dir = dir.path();
  options.progress = false;
  options.budget = 0.03;  // ~50 steps: enough to beat chance clearly
  Trained first = ensure_trained("fmnist-cnn", options);
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(std::filesystem::exists(dir.file("fmnist-cnn.pt")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("fmnist-cnn.json")));
  EXPECT_GT(first.card["metrics"]["test"]["top1"].get<double>(), 0.6);
  EXPECT_EQ(first.card["input"]["shape"], (std::vector<int64_t>{1, 1, 28, 28}));

  // The saved TorchScript reproduces the recorded test accuracy, and its layers are those of the recipe.
  Model model = load_torchscript(first.model_path, {{256, 1, 28, 28}, "float32"});
  const Metrics m = evaluate(model, load_dataset("fmnist", {"test", 0, 0}), {256, false});
  EXPECT_DOUBLE_EQ(m.top1, first.card["metrics"]["test"]["top1"].get<double>());
  EXPECT_EQ(build_layer_table(model).layers.size(), 4u);
  EXPECT_EQ(fold_batch_norm(model).folded.size(), 2u);

  Trained second = ensure_trained("fmnist-cnn", options);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.card, first.card);
}

TEST(Reference, TrainingIsDeterministic) {
  TempDir a, b;
  TrainOptions options;
  options.progress = false;
  options.budget = 0.005;
  options.cache_dir = a.path();
  Trained first = ensure_trained("fmnist-cnn", options);
  options.cache_dir = b.path();
  Trained second = ensure_trained("fmnist-cnn", options);
  EXPECT_EQ(first.card["metrics"], second.card["metrics"]);
  Model ma = load_torchscript(first.model_path, {{1, 1, 28, 28}, "float32"});
  Model mb = load_torchscript(second.model_path, {{1, 1, 28, 28}, "float32"});
  for (std::size_t i = 0; i < ma.tensors().size(); ++i)
    EXPECT_TRUE(torch::equal(ma.tensors()[i].value, mb.tensors()[i].value)) << ma.tensors()[i].name;
}

TEST(Reference, GptHeadIsTiedToTheEmbeddingAndListedOnce) {
  torch::manual_seed(0);
  FortuneGpt net;
  const int64_t context = FortuneGptImpl::kContext;
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{2, context}, "int64"}, "gpt");
  const LayerTable t = build_layer_table(model);
  ASSERT_EQ(t.layers.size(), 1u + 4 * 4);  // embedding (+ tied head), 4 linears per block
  EXPECT_EQ(t.layers[0].name, "tokens");
  EXPECT_EQ(t.layers[0].kind, LayerKind::kEmbedding);
  EXPECT_EQ(t.layers[0].uses, 2);
  EXPECT_EQ(t.layers[0].macs, context * 256 * 128);  // the head: every position x 256 logits x width 128
  at::Tensor ids = torch::randint(256, {3, context});
  EXPECT_TRUE(torch::allclose(model.forward(ids), net->forward(ids), 1e-5, 1e-5));
}

// The saved TorchScript must serve any batch size for users of torch.jit.load, not only the traced one.
template <typename Net>
void expect_batch_agnostic(Net net, const InputSpec& traced, const std::string& name) {
  TempDir dir;
  net->eval();
  Model model = trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, traced, name);
  save_torchscript(model, dir.file("m.pt"));
  torch::jit::Module loaded = torch::jit::load(dir.file("m.pt"));
  for (int64_t batch : {1, 3}) {
    InputSpec spec = traced;
    spec.shape[0] = batch;
    at::Tensor x = spec.dtype == "int64" ? torch::randint(256, spec.shape) : torch::randn(spec.shape);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(loaded.forward({x}).toTensor(), net->forward(x), 1e-4, 1e-5))
        << name << " batch " << batch;
  }
}

TEST(Reference, SavedModelsRunAtAnyBatchSize) {
  torch::manual_seed(0);
  expect_batch_agnostic(FmnistCnn(), {{4, 1, 28, 28}, "float32"}, "fmnist-cnn");
  expect_batch_agnostic(FmnistVit(), {{4, 1, 28, 28}, "float32"}, "fmnist-vit");
  expect_batch_agnostic(FortuneGpt(), {{4, FortuneGptImpl::kContext}, "int64"}, "fortune-gpt");
}

TEST(Reference, UnknownNameListsTheKnownOnes) {
  adze::testing::expect_error([] { recipe("mnist-mlp"); }, ErrorKind::kInvalidArgument,
                              {"mnist-mlp", "fmnist-cnn, fmnist-vit, fortune-gpt"});
}

}  // namespace
}  // namespace adze::reference
