#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <thread>

#include "compress/pass.h"
#include "distributed/gloo_sync.h"
#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using nlohmann::json;
using testing::expect_error;
using testing::fixture;
using testing::TempDir;

// 20 STE steps on the traced CNN fixture (2:4 + INT4 on its classifier, INT8 elsewhere, distilled from the
// uncompressed model), batch 8 over `sync`'s ranks; the model's weights after.
// `moved`, when set: how far the latent weights moved from where the fine-tune started.
std::vector<at::Tensor> finetuned_weights(const std::shared_ptr<GradientSync>& sync, double* moved = nullptr) {
  Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  Model teacher = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
  const Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  CompressionContext c;
  c.model = &model;
  c.reference = &teacher;
  c.table = build_layer_table(model);
  c.train_data = &data;
  c.seed = 7;
  c.sync = sync;
  c.plan = resolve_plan(parse_plan(json::parse(R"({"defaults": {"weight_bits": 8},
                                                 "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})"),
                                   "plan.json"),
                        c.table, "plan.json");
  run_pipeline(parse_pipeline(json::parse(R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights",
      {"name": "finetune.ste", "options": {"steps": 20, "lr": 1e-2, "batch_size": 8, "distill": 0.5}}]})"),
                              "p.json"),
               c);
  std::vector<at::Tensor> out;
  for (const auto& t : model.tensors()) out.push_back(t.value.clone());
  for (const auto& [name, latent] : c.latents) {
    out.push_back(latent.clone());
    if (moved) *moved = std::max(*moved, (latent - c.originals.at(name)).abs().max().item<double>());
  }
  return out;
}

// The issue's bar: two Gloo ranks, each on half of every batch, end where one rank on the whole batch does.
TEST(DataParallel, TwoGlooRanksMatchOneRankOnTheWholeBatch) {
  double moved_by_training = 0;
  const std::vector<at::Tensor> one = finetuned_weights(nullptr, &moved_by_training);
  TempDir tmp;
  std::vector<std::vector<at::Tensor>> ranks(2);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        Rendezvous rv;
        rv.rank = r;
        rv.size = 2;
        rv.file = tmp.file("store");
        ranks[static_cast<std::size_t>(r)] = finetuned_weights(gloo_gradient_sync(rv));
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(errors, std::vector<std::string>(2)) << errors[0] << " | " << errors[1];
  ASSERT_EQ(ranks[0].size(), one.size());
  ASSERT_EQ(ranks[1].size(), one.size());
  double worst = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    for (const auto& rank : ranks) worst = std::max(worst, (rank[i] - one[i]).abs().max().item<double>());
  }
  EXPECT_GT(moved_by_training, 1e-3);  // the comparison means something: the weights moved
  std::cout << "largest difference from one rank: " << worst << "\n";
  EXPECT_LE(worst, 1e-5);
}

TEST(DataParallel, BadRendezvousIsRefusedByName) {
  Rendezvous r;
  r.rank = 2;
  r.size = 2;
  r.file = "/tmp/x";
  expect_error([&] { gloo_gradient_sync(r); }, ErrorKind::kInvalidArgument, {"rank 2 of 2"});
  setenv("ADZE_WORLD_SIZE", "2", 1);
  setenv("ADZE_RANK", "x", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_RANK='x'"});
  setenv("ADZE_RANK", "1", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_STORE", "ADZE_MASTER"});
  setenv("ADZE_MASTER", "localhost", 1);
  expect_error([&] { rendezvous_from_environment(); }, ErrorKind::kInvalidArgument, {"ADZE_MASTER='localhost'"});
  setenv("ADZE_MASTER", "localhost:29500", 1);
  const auto rv = rendezvous_from_environment();
  ASSERT_TRUE(rv);
  EXPECT_EQ(rv->rank, 1);
  EXPECT_EQ(rv->port, 29500);
  for (const char* v : {"ADZE_WORLD_SIZE", "ADZE_RANK", "ADZE_MASTER"}) unsetenv(v);
  EXPECT_FALSE(rendezvous_from_environment());
}

}  // namespace
}  // namespace adze
