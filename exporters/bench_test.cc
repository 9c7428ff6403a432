// BenchResult's pooling of rounds and bench_report's ratios, on made-up timings (no model is run).
#include "exporters/bench.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "runtime/machine_probe.h"

namespace adze {
namespace {

BenchResult timed(const std::string& path, int threads, std::vector<double> seconds, double cold = 0.01,
                  double probe = 0) {
  BenchResult r;
  r.probe_seconds = probe;
  r.path = path;
  r.threads = threads;
  r.seconds = std::move(seconds);
  r.open_seconds = cold;
  r.peak_rss_kib = 1000;
  return r;
}

TEST(Bench, RoundsArePooledAndTheirSpreadKept) {
  BenchResult r = timed("m.adze", 1, {1.0, 2.0, 3.0});
  EXPECT_DOUBLE_EQ(r.quantile(0.5), 2.0);
  EXPECT_DOUBLE_EQ(r.round_spread(), 1.0);  // one round
  r.merge_round(timed("m.adze", 1, {2.0, 2.5, 3.0}, 0.03));
  r.merge_round(timed("m.adze", 1, {3.0, 3.0, 4.0}, 0.02));
  EXPECT_EQ(r.seconds.size(), 9u);
  EXPECT_DOUBLE_EQ(r.quantile(0.5), 3.0);
  EXPECT_EQ(r.round_medians, (std::vector<double>{2.0, 2.5, 3.0}));
  EXPECT_DOUBLE_EQ(r.round_spread(), 1.5);
  EXPECT_DOUBLE_EQ(r.cold_start_seconds(), 0.02);  // the median round's
}

TEST(Bench, ReportGivesEachModelsSpeedUpOverItsFirstThreadCount) {
  const std::vector<BenchResult> rows = {timed("a.adze", 1, {4.0}), timed("a.adze", 2, {2.5}),
                                         timed("b.onnx", 1, {2.0}), timed("b.onnx", 2, {1.6})};
  const nlohmann::json report = bench_report(rows, InputSpec{{1, 3}, "float32"}, 1, 0);
  ASSERT_EQ(report["rows"].size(), 4u);
  EXPECT_DOUBLE_EQ(report["rows"][1]["speedup_vs_first_threads"].get<double>(), 1.6);
  EXPECT_DOUBLE_EQ(report["rows"][3]["speedup_vs_first_threads"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(report["rows"][3]["speedup_vs_first"].get<double>(), 2.5);  // over the first row
  EXPECT_EQ(report["threads"], 1);
  // One round: the paired ratio is the pooled one.
  EXPECT_DOUBLE_EQ(report["rows"][1]["paired_speedup_vs_first_threads"].get<double>(), 1.6);
  // One thread count: no such column.
  const nlohmann::json single = bench_report({rows[0], rows[2]}, InputSpec{{1, 3}, "float32"}, 1, 0);
  EXPECT_FALSE(single["rows"][1].contains("speedup_vs_first_threads"));
}

// Rounds in which the machine slowed for one row: the pooled medians take the slow round's runs into one side,
// the paired ratio compares each round's two counts, timed one right after the other.
TEST(Bench, PairedSpeedUpComparesTheCountsRoundByRound) {
  BenchResult one = timed("a.adze", 1, {1.0, 1.0, 1.0}), two = timed("a.adze", 2, {0.5, 0.5, 0.5});
  one.merge_round(timed("a.adze", 1, {1.0, 1.0, 1.0}));
  two.merge_round(timed("a.adze", 2, {1.0, 1.0, 1.0}));  // a slow spell at two threads
  one.merge_round(timed("a.adze", 1, {2.0, 2.0, 2.0}));  // one at one thread
  two.merge_round(timed("a.adze", 2, {1.0, 1.0, 1.0}));
  one.merge_round(timed("a.adze", 1, {1.0, 1.0, 1.0}));
  two.merge_round(timed("a.adze", 2, {0.5, 0.5, 0.5}));
  const std::vector<BenchResult> rows = {one, two};
  EXPECT_DOUBLE_EQ(speedups_vs_first_threads(rows)[1], 1.0 / 0.75);  // pooled medians 1.0 and 0.75
  EXPECT_DOUBLE_EQ(paired_speedups_vs_first_threads(rows)[1], 2.0);  // rounds: 2, 1, 2, 2
  EXPECT_DOUBLE_EQ(paired_speedups_vs_first_threads(rows)[0], 1.0);
}

// The machine's cores' worth at two threads: threads over first threads times the probe's time at the first
// count over its time at the row's, paired by round like the model's ratio; absent without probes.
TEST(Bench, MachineSpeedUpComesFromTheProbesOfTheSameRounds) {
  BenchResult one = timed("a.adze", 1, {1.0}, 0.01, 1.0e-3), two = timed("a.adze", 2, {0.6}, 0.01, 1.0e-3);
  one.merge_round(timed("a.adze", 1, {1.0}, 0.01, 1.0e-3));
  two.merge_round(timed("a.adze", 2, {0.8}, 0.01, 2.0e-3));  // the two CPUs on one core: one core's worth
  one.merge_round(timed("a.adze", 1, {1.0}, 0.01, 1.0e-3));
  two.merge_round(timed("a.adze", 2, {0.6}, 0.01, 1.25e-3));
  EXPECT_EQ(two.round_probes, (std::vector<double>{1.0e-3, 2.0e-3, 1.25e-3}));
  const std::vector<BenchResult> rows = {one, two};
  const std::vector<double> machine = machine_speedups_vs_first_threads(rows);
  EXPECT_DOUBLE_EQ(machine[0], 1.0);
  EXPECT_DOUBLE_EQ(machine[1], 1.6);  // rounds: 2, 1, 1.6
  nlohmann::json report = bench_report(rows, InputSpec{{1, 3}, "float32"}, 1, 0, 3);
  EXPECT_DOUBLE_EQ(report["rows"][1]["machine_speedup_vs_first_threads"].get<double>(), 1.6);
  EXPECT_EQ(report["rows"][1]["round_probes_seconds"].size(), 3u);
  // A record without a probe (an older child's): no machine figure rather than a made-up one.
  const std::vector<BenchResult> unprobed = {timed("b.pt", 1, {1.0}), timed("b.pt", 2, {0.5})};
  EXPECT_TRUE(std::isnan(machine_speedups_vs_first_threads(unprobed)[1]));
  report = bench_report(unprobed, InputSpec{{1, 3}, "float32"}, 1, 0);
  EXPECT_FALSE(report["rows"][1].contains("machine_speedup_vs_first_threads"));
  // The probe travels in the child's record.
  const BenchResult back = bench_result_from_json(to_json(one), "test");
  EXPECT_DOUBLE_EQ(back.probe_seconds, 1.0e-3);
}

// The hand-off probe's figure, per round, pooled as the median of the rounds, in the record and the report.
TEST(Bench, HandOffIsKeptPerRoundAndPooledAsTheirMedian) {
  BenchResult two = timed("a.adze", 2, {0.6});
  two.handoff_seconds = 500e-9;
  EXPECT_DOUBLE_EQ(two.handoff(), 500e-9);
  BenchResult next = timed("a.adze", 2, {0.6});
  next.handoff_seconds = 100e-9;
  two.merge_round(next);
  next.handoff_seconds = 120e-9;
  two.merge_round(next);
  EXPECT_EQ(two.round_handoffs, (std::vector<double>{500e-9, 100e-9, 120e-9}));
  EXPECT_DOUBLE_EQ(two.handoff(), 120e-9);
  const nlohmann::json report = bench_report({two}, InputSpec{{1, 3}, "float32"}, 1, 0, 3);
  EXPECT_EQ(report["rows"][0]["round_handoffs_seconds"].size(), 3u);
  EXPECT_DOUBLE_EQ(bench_result_from_json(to_json(next), "test").handoff_seconds, 120e-9);
}

// The hand-off probe: nothing on one thread; on two, a round trip that takes time (above a nanosecond: a cache
// line cannot cross between cores faster) and ends (within a second, even where a loaded machine keeps one of
// the two threads waiting for a CPU).
TEST(Bench, HandOffProbeTimesARoundTripBetweenTwoThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  EXPECT_EQ(runtime::handoff_probe_seconds(), 0.0);
  omp_set_num_threads(2);
  const double t = runtime::handoff_probe_seconds();
  omp_set_num_threads(threads);
  EXPECT_GT(t, 1e-9);
  EXPECT_LT(t, 1.0);
}

// The probe itself: its 6.3 million floating-point operations take over 780,000 cycles at eight a cycle (more
// than 78 us below 10 GHz), unless the compiler folded the arithmetic away.
TEST(Bench, MachineProbeTakesTime) {
  const double t = runtime::machine_probe_seconds();
  EXPECT_GT(t, 78e-6);
  EXPECT_LT(t, 10.0);
}

}  // namespace
}  // namespace adze
