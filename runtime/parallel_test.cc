// The runtime's parallel bodies (parallel.h): work_for's shares and barriers, a standing team running many bodies
// in one region, bodies inside bodies running alone, and StealingShares (every item taken exactly once; a thread
// that falls behind has its tail taken by the other; a share that needs preparing is not taken from before its
// owner marks it ready).
#include "runtime/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
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
  maybe_parallel(true, [&] {
    const int t = work_thread();
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
  });
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

// The owner of an item is the thread whose own share (begin(t), begin(t + 1)) holds it, for any split.
TEST_F(Parallel, EachItemsOwnerIsTheThreadWhoseShareHoldsIt) {
  for (const int64_t items : {1, 7, 10, 64, 1000})
    for (const int threads : {1, 2, 3, 5, 64}) {
      const StealingShares shares(items);
      for (int64_t item = 0; item < items; ++item) {
        const int t = shares.owner(item, threads);
        ASSERT_LE(shares.begin(t, threads), item) << items << " items, " << threads << " threads";
        ASSERT_LT(item, shares.begin(t + 1, threads)) << items << " items, " << threads << " threads";
      }
    }
}

// Which thread ran each item of work_for over n items, and whether each thread saw all of the first loop's
// items before starting the second (the barrier between them).
TEST_F(Parallel, WorkForSharesStaticallyAndEndsAtABarrier) {
  for (const bool standing : {false, true}) {
    std::vector<std::atomic<int>> first(kItems), second(kItems);
    std::atomic<int> done{0}, early{0};
    const auto body = [&] {
      work_for(kItems, [&](int64_t i) {
        std::this_thread::sleep_for(std::chrono::microseconds(work_thread() == 1 ? 50 : 0));
        first[static_cast<std::size_t>(i)] = work_thread() + 1;
        ++done;
      });
      work_share(kItems, [&](int64_t i) {
        if (done.load() != kItems) ++early;
        second[static_cast<std::size_t>(i)] = work_thread() + 1;
      });
    };
    if (standing)
      with_standing_team([&] { maybe_parallel(true, body); });
    else
      maybe_parallel(true, body);
    EXPECT_EQ(early.load(), 0) << "an item of the second loop began before the first loop ended";
    for (int64_t i = 0; i < kItems; ++i) {
      const int expected = i < kItems / 2 ? 1 : 2;  // thread i of T: [n·i/T, n·(i+1)/T)
      EXPECT_EQ(first[static_cast<std::size_t>(i)].load(), expected) << "item " << i << (standing ? " (standing)" : "");
      EXPECT_EQ(second[static_cast<std::size_t>(i)].load(), expected) << "item " << i;
    }
  }
}

TEST_F(Parallel, AStandingTeamRunsEveryBodyOnEveryThreadInOrder) {
  constexpr int kBodies = 1000;
  std::vector<int> last(2, -1);  // the last body each thread ran
  std::atomic<int> out_of_order{0}, threads_seen{0};
  with_standing_team([&] {
    for (int b = 0; b < kBodies; ++b) {
      maybe_parallel(true, [&] {
        if (work_threads() != 2) ++threads_seen;
        int& l = last[static_cast<std::size_t>(work_thread())];
        if (l != b - 1) ++out_of_order;
        l = b;
      });
      // Between bodies, this thread alone: what the body wrote is visible, and a loop runs whole here.
      ASSERT_EQ(last[0], b);
      ASSERT_EQ(last[1], b);
      int64_t items = 0;
      work_for(10, [&](int64_t) { ++items; });
      ASSERT_EQ(items, 10);
    }
  });
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(threads_seen.load(), 0);
}

TEST_F(Parallel, ABodyInsideABodyRunsAloneAndWhole) {
  std::atomic<int64_t> items{0}, inner_threads{0};
  maybe_parallel(true, [&] {
    maybe_parallel(true, [&] {
      inner_threads += work_threads();
      work_for(100, [&](int64_t) { ++items; });
    });
    EXPECT_TRUE(in_parallel_work());
  });
  EXPECT_FALSE(in_parallel_work());
  EXPECT_EQ(inner_threads.load(), 2) << "each of the two threads ran the inner body as a team of one";
  EXPECT_EQ(items.load(), 200) << "each ran all 100 items";
}

TEST_F(Parallel, WhatTheLeaderThrowsIsThrownAfterTheTeamEnds) {
  int bodies = 0;
  EXPECT_THROW(with_standing_team([&] {
                 maybe_parallel(true, [&] {
                   if (work_thread() == 0) ++bodies;
                 });
                 throw std::runtime_error("bad input");
               }),
               std::runtime_error);
  EXPECT_EQ(bodies, 1);
  // The team has closed: the next bodies run on a region of their own.
  std::atomic<int> threads{0};
  maybe_parallel(true, [&] { ++threads; });
  EXPECT_EQ(threads.load(), 2);
}

TEST_F(Parallel, AnAloneScopeRunsBodiesOnTheCallerAndCountsNone) {
  const uint64_t before = work_context().bodies;
  std::atomic<int> runs{0};
  {
    const AloneScope alone(true);
    EXPECT_EQ(team_threads(), 1);
    maybe_parallel(true, [&] { ++runs; });
    EXPECT_EQ(work_context().bodies, before);
  }
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(team_threads(), 2);
  maybe_parallel(true, [&] { ++runs; });
  EXPECT_EQ(runs.load(), 3);
  EXPECT_EQ(work_context().bodies, before + 1) << "one body handed to a team";
}

TEST_F(Parallel, OnOneThreadAStandingTeamIsTheCallerAlone) {
  omp_set_num_threads(1);
  std::atomic<int> runs{0};
  with_standing_team([&] {
    maybe_parallel(true, [&] {
      ++runs;
      EXPECT_EQ(work_threads(), 1);
    });
  });
  EXPECT_EQ(runs.load(), 1);
}

}  // namespace
}  // namespace runtime
}  // namespace adze
