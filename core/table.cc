#include "core/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace adze {

void Table::add_column(const std::string& header, Align align) {
  headers_.push_back(header);
  aligns_.push_back(align);
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::add_rule() { rows_.emplace_back(); }

namespace {

// Columns a cell takes on a terminal: its UTF-8 code points ("µs" is two), not its bytes.
std::size_t columns(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
}

}  // namespace

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) width[c] = columns(headers_[c]);
  for (const auto& row : rows_)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], columns(row[c]));
  auto print_row = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - columns(cells[c]), ' ');
      if (c) out << "  ";
      if (aligns_[c] == Align::kRight)
        out << pad << cells[c];
      else
        out << cells[c] << (c + 1 < cells.size() ? pad : "");
    }
    out << '\n';
  };
  auto print_rule = [&] {
    std::size_t total = 0;
    for (auto w : width) total += w;
    out << std::string(total + 2 * (width.size() - 1), '-') << '\n';
  };
  print_row(headers_);
  print_rule();
  for (const auto& row : rows_) {
    if (row.empty() || std::all_of(row.begin(), row.end(), [](const std::string& s) { return s.empty(); }))
      print_rule();
    else
      print_row(row);
  }
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string signed_fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.*f", decimals, value);
  return buf;
}

std::string human_count(double value) {
  const double a = std::fabs(value);
  if (a < 10000) return fixed(value, 0);
  if (a < 1e6) return fixed(value / 1e3, 2) + " k";
  if (a < 1e9) return fixed(value / 1e6, 2) + " M";
  return fixed(value / 1e9, 2) + " G";
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fixed(bytes, 0) + " B" : fixed(bytes, 2) + " " + units[u];
}

std::string percent(double fraction, int decimals) { return fixed(100.0 * fraction, decimals) + "%"; }

std::string human_seconds(double s) {
  if (s < 1e-6) return fixed(s * 1e9, 1) + " ns";
  if (s < 1e-3) return fixed(s * 1e6, 2) + " µs";
  if (s < 1) return fixed(s * 1e3, 2) + " ms";
  return fixed(s, 2) + " s";
}

std::string human_si(double value, const std::string& unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (std::fabs(value) >= 1000 && i < 5) {
    value /= 1000;
    ++i;
  }
  return fixed(value, std::fabs(value) < 10 ? 2 : std::fabs(value) < 100 ? 1 : 0) + " " + prefixes[i] + unit;
}

std::string join(const std::vector<int>& values, const std::string& separator) {
  std::string s;
  for (int v : values) s += (s.empty() ? "" : separator) + std::to_string(v);
  return s;
}

}  // namespace adze
