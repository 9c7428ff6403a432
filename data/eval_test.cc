#include "data/eval.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace adze {
namespace {

Dataset classification(int64_t n, int64_t classes) {
  Dataset d;
  d.name = "toy";
  d.inputs = torch::arange(n).to(torch::kFloat).unsqueeze(1);
  d.targets = torch::arange(n) % classes;
  d.num_classes = classes;
  return d;
}

TEST(Evaluate, PerfectAndUniformPredictions) {
  Dataset d = classification(10, 4);
  auto perfect = [&](const at::Tensor& x) {
    return torch::one_hot(x.squeeze(1).to(torch::kLong) % 4, 4).to(torch::kFloat) * 100.0;
  };
  Metrics m = evaluate(perfect, d, {3, false});
  EXPECT_EQ(m.samples, 10);
  EXPECT_DOUBLE_EQ(m.top1, 1.0);
  EXPECT_NEAR(m.cross_entropy, 0.0, 1e-6);
  auto uniform = [&](const at::Tensor& x) { return torch::zeros({x.size(0), 4}); };
  m = evaluate(uniform, d, {4, false});
  EXPECT_NEAR(m.cross_entropy, std::log(4.0), 1e-6);
  EXPECT_NEAR(m.perplexity(), 4.0, 1e-5);
}

TEST(Evaluate, PerSampleOutcomesInOrder) {
  Dataset d = classification(10, 4);
  // Right on the even samples only: an odd sample's prediction is its class plus one.
  auto half = [&](const at::Tensor& x) {
    const at::Tensor i = x.squeeze(1).to(torch::kLong);
    return torch::one_hot((i + (i % 2)) % 4, 4).to(torch::kFloat);
  };
  std::vector<uint8_t> outcomes = {7};  // replaced, not appended to
  const Metrics m = evaluate(half, d, {3, false, &outcomes});
  EXPECT_EQ(outcomes, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0, 1, 0, 1, 0}));
  EXPECT_DOUBLE_EQ(m.top1, 0.5);
}

TEST(Evaluate, LanguageModelBitsPerCharacter) {
  Dataset d;
  d.name = "lm";
  d.task = Task::kLanguageModel;
  d.inputs = torch::zeros({6, 5}, torch::kLong);
  d.targets = torch::zeros({6, 5}, torch::kLong);
  d.num_classes = 256;
  auto uniform = [](const at::Tensor& x) { return torch::zeros({x.size(0), x.size(1), 256}); };
  Metrics m = evaluate(uniform, d, {4, false});
  EXPECT_EQ(m.predictions, 30);
  EXPECT_NEAR(m.bits_per_char(), 8.0, 1e-5);
  EXPECT_TRUE(to_json(m).contains("bits_per_char"));
}

TEST(Evaluate, NamesAnOutputThatDoesNotFitTheTargets) {
  Dataset d = classification(8, 4);
  testing::expect_error(
      [&] {
        evaluate([](const at::Tensor& x) { return torch::zeros({x.size(0), 2}); }, d, {8, false});
      },
      ErrorKind::kInvalidArgument, {"[8, 2]", "C/V >= 4"});
}

TEST(UnigramEntropy, MatchesTheDefinition) {
  EXPECT_NEAR(unigram_entropy_bits(torch::tensor({0, 1, 0, 1}, torch::kLong)), 1.0, 1e-12);
  EXPECT_NEAR(unigram_entropy_bits(torch::tensor({5, 5, 5}, torch::kLong)), 0.0, 1e-12);
}

}  // namespace
}  // namespace adze
