// StealingShares: every item taken exactly once; a thread that falls behind has its tail taken by the other;
// a share that needs preparing is not taken from before its owner marks it ready.
#include "runtime/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace adze {
namespace runtime {
namespace {

constexpr int64_t kItems = 200;

// Runs `shares` on a team of two, thread 1 starting `delay` late; returns which thread took each item.
std::vector<int> taken_by(StealingShares& shares, std::chrono::milliseconds delay, std::atomic<bool>* prepared) {
  std::vector<std::atomic<int>> by(kItems);
  for (auto& b : by) b = -1;
  std::atomic<int> times{0};
#pragma omp parallel num_threads(2)
  {
    const int t = omp_get_thread_num();
    if (t == 1) {
      std::this_thread::sleep_for(delay);
      if (prepared) prepared->store(true);
      shares.ready();
    } else if (prepared) {
      shares.ready();
    }
    shares.run([&](int64_t i) {
      if (prepared && i >= shares.begin(1, 2)) {
        EXPECT_TRUE(prepared->load()) << "item " << i << " before its share";
      }
      if (by[static_cast<std::size_t>(i)].exchange(t) != -1) times++;
    });
  }
  EXPECT_EQ(times.load(), 0) << "an item taken twice";
  std::vector<int> out;
  for (auto& b : by) out.push_back(b.load());
  return out;
}

class Parallel : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(2);
  }
  void TearDown() override { omp_set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_F(Parallel, EachThreadTakesItsOwnShareAndTheLateOnesTail) {
  StealingShares shares(kItems);
  const std::vector<int> by = taken_by(shares, std::chrono::milliseconds(50), nullptr);
  int64_t stolen = 0;
  for (int64_t i = 0; i < kItems; ++i) {
    ASSERT_NE(by[static_cast<std::size_t>(i)], -1) << "item " << i << " not taken";
    if (i < shares.begin(1, 2)) {
      EXPECT_EQ(by[static_cast<std::size_t>(i)], 0) << "item " << i;
    }
    if (i >= shares.begin(1, 2) && by[static_cast<std::size_t>(i)] == 0) ++stolen;
  }
  // Thread 0 finished its hundred items long before thread 1 woke: it took thread 1's from the back.
  EXPECT_GT(stolen, 0);
  EXPECT_EQ(by.back(), 0);
}

TEST_F(Parallel, AShareIsTakenFromOnlyOnceReady) {
  std::atomic<bool> prepared{false};
  StealingShares shares(kItems, /*ready=*/true);
  const std::vector<int> by = taken_by(shares, std::chrono::milliseconds(20), &prepared);
  for (int64_t i = 0; i < kItems; ++i) ASSERT_NE(by[static_cast<std::size_t>(i)], -1) << "item " << i;
}

TEST_F(Parallel, OutsideARegionOneThreadTakesEveryItemInOrder) {
  StealingShares shares(kItems, /*ready=*/true);  // nothing to wait for: no other thread runs
  std::vector<int64_t> order;
  shares.ready();
  shares.run([&](int64_t i) { order.push_back(i); });
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kItems));
  for (int64_t i = 0; i < kItems; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

}  // namespace
}  // namespace runtime
}  // namespace adze
