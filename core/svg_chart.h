// An x-y chart as an SVG document, for the plots adze writes (a search's front, a sweep's Pareto plot).
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>

namespace adze {

// Text as SVG character data ("size <= 150KB" would otherwise end the document early).
inline std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// An x-y chart on a 760 x 480 page: a title, both axes with 5 ticks and their names; dashed lines, squares and
// rings through its methods, any other mark written into `s` at X(x), Y(y).
class Chart {
 public:
  Chart(double x0, double x1, double y0, double y1, const std::string& title, const std::string& x_axis,
        const std::string& y_axis)
      : x0_(x0), x1_(x1), y0_(y0), y1_(y1) {
    s.precision(4);
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"24\" font-size=\"14\">" << xml_escape(title) << "</text>\n"
      << "<line x1=\"" << kLeft << "\" y1=\"" << kH - kBottom << "\" x2=\"" << kW - kRight << "\" y2=\"" << kH - kBottom
      << "\" stroke=\"black\"/>\n<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\""
      << kH - kBottom << "\" stroke=\"black\"/>\n";
    for (int i = 0; i <= 4; ++i) {
      const double x = x0 + (x1 - x0) * i / 4, y = y0 + (y1 - y0) * i / 4;
      s << "<text x=\"" << X(x) << "\" y=\"" << kH - kBottom + 16 << "\" text-anchor=\"middle\">" << x
        << "</text>\n<text x=\"" << kLeft - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">" << y << "</text>\n";
    }
    const double middle = (kTop + kH - kBottom) / 2;
    s << "<text x=\"" << (kLeft + kW - kRight) / 2 << "\" y=\"" << kH - 18 << "\" text-anchor=\"middle\">"
      << xml_escape(x_axis) << "</text>\n<text x=\"18\" y=\"" << middle << "\" transform=\"rotate(-90 18 " << middle
      << ")\" text-anchor=\"middle\">" << xml_escape(y_axis) << "</text>\n";
  }
  double X(double x) const { return kLeft + (x - x0_) / (x1_ - x0_) * (kW - kLeft - kRight); }
  double Y(double y) const { return kH - kBottom - (y - y0_) / (y1_ - y0_) * (kH - kTop - kBottom); }
  void vertical(double x, const std::string& label) {
    s << "<line x1=\"" << X(x) << "\" y1=\"" << kTop << "\" x2=\"" << X(x) << "\" y2=\"" << kH - kBottom
      << "\" stroke=\"#c33\" stroke-dasharray=\"5,4\"/>\n<text x=\"" << X(x) + 4 << "\" y=\"" << kTop + 12
      << "\" fill=\"#c33\">" << xml_escape(label) << "</text>\n";
  }
  void horizontal(double y, const std::string& label) {
    s << "<line x1=\"" << kLeft << "\" y1=\"" << Y(y) << "\" x2=\"" << kW - kRight << "\" y2=\"" << Y(y)
      << "\" stroke=\"#777\" stroke-dasharray=\"2,3\"/>\n<text x=\"" << kW - kRight - 4 << "\" y=\"" << Y(y) - 4
      << "\" fill=\"#555\" text-anchor=\"end\">" << xml_escape(label) << "</text>\n";
  }
  void square(double x, double y, const std::string& label) {
    s << "<rect x=\"" << X(x) - 4 << "\" y=\"" << Y(y) - 4 << "\" width=\"8\" height=\"8\" fill=\"#e8a33d\"/>\n"
      << "<text x=\"" << X(x) + 6 << "\" y=\"" << Y(y) - 6 << "\" fill=\"#9a5f00\">" << xml_escape(label)
      << "</text>\n";
  }
  void ring(double x, double y, const std::string& label) {
    s << "<circle cx=\"" << X(x) << "\" cy=\"" << Y(y) << "\" r=\"7\" fill=\"none\" stroke=\"#2a2\" "
      << "stroke-width=\"2\"/>\n<text x=\"" << X(x) + 9 << "\" y=\"" << Y(y) + 14 << "\" fill=\"#2a2\">"
      << xml_escape(label) << "</text>\n";
  }
  std::string finish() {
    s << "</svg>\n";
    return s.str();
  }

  std::ostringstream s;

 private:
  static constexpr double kW = 760, kH = 480, kLeft = 80, kRight = 30, kTop = 50, kBottom = 60;
  double x0_, x1_, y0_, y1_;
};

// [lo, hi] widened by `pad` of its width on each side; a range of (next to) no width is widened by `pad` of its
// magnitude (at least 1) instead, so that a single point still has axes around it.
inline std::pair<double, double> padded(double lo, double hi, double pad) {
  const double magnitude = std::max({1.0, std::abs(lo), std::abs(hi)});
  const double width = hi - lo > 1e-9 * magnitude ? hi - lo : magnitude;
  return {lo - pad * width, hi + pad * width};
}

}  // namespace adze
