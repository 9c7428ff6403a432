// SplitChoice: timed runs alternate split and alone; an op runs split only where it handed out a body in every
// split run and its split median is below its alone median; a new thread count or schedule size starts afresh.
#include "runtime/split_choice.h"

#include <gtest/gtest.h>

#include <vector>

namespace adze {
namespace runtime {
namespace {

using Mode = SplitChoice::Mode;

// Feeds the timed runs of three ops: op 0 faster split, op 1 faster alone, op 2 faster split but handing out no
// body in one split run. Returns the modes handed out, in order.
std::vector<Mode> time_three_ops(SplitChoice& c, int threads) {
  std::vector<Mode> modes;
  for (int run = 0; run < 2 * SplitChoice::kTimedRuns; ++run) {
    const SplitChoice::Run r = c.next_run(3, threads);
    modes.push_back(r.mode);
    EXPECT_EQ(r.choice, nullptr);
    const bool split = r.mode == Mode::kTimeSplit;
    const double noise = 1e-7 * run;
    const std::vector<double> seconds = split ? std::vector<double>{10e-6 + noise, 30e-6 + noise, 5e-6}
                                              : std::vector<double>{20e-6 + noise, 20e-6 + noise, 9e-6};
    c.record(r.mode, threads, seconds, {true, true, run != 2});
  }
  return modes;
}

TEST(SplitChoice, TimedRunsAlternateAndTheFasterKindWinsPerOp) {
  SplitChoice c;
  const std::vector<Mode> modes = time_three_ops(c, 2);
  for (std::size_t i = 0; i < modes.size(); ++i)
    EXPECT_EQ(modes[i], i % 2 == 0 ? Mode::kTimeSplit : Mode::kTimeAlone) << "run " << i;
  const SplitChoice::Run chosen = c.next_run(3, 2);
  ASSERT_EQ(chosen.mode, Mode::kChosen);
  ASSERT_NE(chosen.choice, nullptr);
  EXPECT_EQ(chosen.choice->split, (std::vector<bool>{true, false, false}));
  EXPECT_TRUE(chosen.choice->any);
}

TEST(SplitChoice, NoOpGainingMeansNoTeam) {
  SplitChoice c;
  for (int run = 0; run < 2 * SplitChoice::kTimedRuns; ++run) {
    const SplitChoice::Run r = c.next_run(2, 2);
    c.record(r.mode, 2, r.mode == Mode::kTimeSplit ? std::vector<double>{3e-6, 4e-6} : std::vector<double>{2e-6, 4e-6},
             {true, false});
  }
  const SplitChoice::Run chosen = c.next_run(2, 2);
  ASSERT_NE(chosen.choice, nullptr);
  EXPECT_FALSE(chosen.choice->any);
}

TEST(SplitChoice, AnotherThreadCountOrSizeStartsAfresh) {
  SplitChoice c;
  time_three_ops(c, 2);
  ASSERT_EQ(c.next_run(3, 2).mode, Mode::kChosen);
  EXPECT_EQ(c.next_run(3, 4).mode, Mode::kTimeSplit) << "four threads: timed again";
  // A record from a run that began before the restart, for two threads, changes nothing.
  c.record(Mode::kTimeAlone, 2, {1.0, 1.0, 1.0}, {});
  EXPECT_EQ(c.next_run(3, 4).mode, Mode::kTimeAlone);
  EXPECT_EQ(c.next_run(5, 4).mode, Mode::kTimeSplit) << "another schedule size: timed again";
  SplitChoice copy(c);
  EXPECT_EQ(copy.next_run(5, 4).mode, Mode::kTimeSplit) << "a copy starts afresh";
}

}  // namespace
}  // namespace runtime
}  // namespace adze
