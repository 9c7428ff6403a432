// Plain-text tables with aligned columns and units, for the human output of every command.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace adze {

class Table {
 public:
  enum class Align { kLeft, kRight };
  /// Column headers; a column whose header is followed by add_column(..., kRight) is right-aligned.
  void add_column(const std::string& header, Align align = Align::kLeft);
  void add_row(std::vector<std::string> cells);
  /// A horizontal rule before the next row (e.g. before a totals row).
  void add_rule();
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;  // an empty row is a rule
};

/// 1234567 -> "1.23 M"; below 10000 the plain integer.
std::string human_count(double value);
/// 1536 -> "1.50 KiB".
std::string human_bytes(double bytes);
/// 0.1234 -> "12.34%".
std::string percent(double fraction, int decimals = 2);
/// Fixed-point with `decimals` digits.
std::string fixed(double value, int decimals);
/// Fixed-point with its sign always written: "+0.12", "-0.03".
std::string signed_fixed(double value, int decimals);
/// 0.000042 -> "42.00 µs"; ns, µs, ms or s.
std::string human_seconds(double seconds);
/// 3.12e14, "MAC/s" -> "312 TMAC/s": decimal SI prefixes up to P.
std::string human_si(double value, const std::string& unit);
/// {2, 4, 8} -> "2, 4, 8".
std::string join(const std::vector<int>& values, const std::string& separator = ", ");

}  // namespace adze
