// SplitChoice: settling runs, then blocks of whole runs split, alone, alone, split (each block's first run
// untimed), then a block of the cut the per-op times favour; the kind whose median run was fastest is kept; a new
// thread count or schedule size starts afresh.
#include "runtime/split_choice.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace adze {
namespace runtime {
namespace {

constexpr std::size_t kOps = 4;

// Op times of a run with ops [0, cut) split: ops 0 and 1 gain from splitting, ops 2 and 3 lose; op 3 hands out
// a body, op 2 does too. The run's time is the ops' sum plus `extra` for a run with a cut inside.
struct Timing {
  double extra_for_cut = 0.0;
  std::vector<double> split = {10e-6, 20e-6, 8e-6, 9e-6}, alone = {20e-6, 30e-6, 5e-6, 6e-6};
};

// Hands out and records runs until the choice is made; returns the cuts handed out.
std::vector<std::size_t> choose(SplitChoice& c, int threads, const Timing& t) {
  std::vector<std::size_t> cuts;
  for (int i = 0; i < 100; ++i) {
    const SplitChoice::Run r = c.next_run(kOps, threads);
    if (!r.timed && r.step == 0 && i > 0) break;  // chosen
    cuts.push_back(r.cut);
    std::vector<double> ops(kOps);
    for (std::size_t o = 0; o < kOps; ++o) ops[o] = o < r.cut ? t.split[o] : t.alone[o];
    const bool inside = r.cut > 0 && r.cut < kOps;
    c.record(r, threads, ops, std::vector<bool>(kOps, true),
             std::accumulate(ops.begin(), ops.end(), 0.0) + (inside ? t.extra_for_cut : 0.0));
  }
  return cuts;
}

TEST(SplitChoice, WholeKindsInBlocksThenTheFavouredCut) {
  SplitChoice c;
  const std::vector<std::size_t> cuts = choose(c, 2, Timing{});
  ASSERT_EQ(cuts.size(), static_cast<std::size_t>(SplitChoice::kChoosingRuns));
  for (int step = 0; step < SplitChoice::kChoosingRuns; ++step) {
    const int block = (step - SplitChoice::kSettlingRuns) / SplitChoice::kBlock;
    const std::size_t expected = step < SplitChoice::kSettlingRuns || block == 0 || block == 3 ? kOps
                                 : block == 4                                                  ? 2
                                                                                               : 0;
    EXPECT_EQ(cuts[static_cast<std::size_t>(step)], expected) << "step " << step;
  }
  const SplitChoice::Run chosen = c.next_run(kOps, 2);
  EXPECT_FALSE(chosen.timed);
  EXPECT_EQ(chosen.cut, 2u) << "ops 0 and 1 split, 2 and 3 alone";
}

TEST(SplitChoice, ACutSlowerThanAWholeKindLoses) {
  SplitChoice c;
  Timing t;
  t.extra_for_cut = 100e-6;  // the data crossing between the cores at the cut outweighs what it saves
  choose(c, 2, t);
  EXPECT_EQ(c.next_run(kOps, 2).cut, kOps) << "all split: 47 us a run against 61 alone and 141 cut";
}

TEST(SplitChoice, WhereAloneIsFastestEverywhereNoCutIsTimed) {
  SplitChoice c;
  Timing t;
  t.split = {30e-6, 40e-6, 8e-6, 9e-6};
  const std::vector<std::size_t> cuts = choose(c, 2, t);
  EXPECT_EQ(cuts.size(), static_cast<std::size_t>(SplitChoice::kSettlingRuns + 4 * SplitChoice::kBlock));
  EXPECT_EQ(c.next_run(kOps, 2).cut, 0u);
}

TEST(SplitChoice, AnotherThreadCountOrSizeStartsAfresh) {
  SplitChoice c;
  choose(c, 2, Timing{});
  ASSERT_EQ(c.next_run(kOps, 2).cut, 2u);
  const SplitChoice::Run first = c.next_run(kOps, 4);
  EXPECT_EQ(first.cut, kOps) << "four threads: the first block again";
  EXPECT_FALSE(first.timed);
  // A record from a run that began before the restart, for two threads, changes nothing.
  c.record({0, true, SplitChoice::kSettlingRuns + 1}, 2, std::vector<double>(kOps, 1.0), {}, 4.0);
  for (int step = 1; step < SplitChoice::kSettlingRuns; ++step) EXPECT_FALSE(c.next_run(kOps, 4).timed);
  EXPECT_FALSE(c.next_run(kOps, 4).timed) << "a block's first run";
  EXPECT_TRUE(c.next_run(kOps, 4).timed);
  EXPECT_EQ(c.next_run(kOps + 1, 4).step, 0) << "another schedule size: timed again";
  SplitChoice copy(c);
  EXPECT_EQ(copy.next_run(kOps + 1, 4).step, 0) << "a copy starts afresh";
}

}  // namespace
}  // namespace runtime
}  // namespace adze
