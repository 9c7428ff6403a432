#include "search/front_plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace adze {

namespace {

// Text as SVG character data ("size <= 150KB" would otherwise end the document early).
std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string front_svg(const std::vector<Point>& front, const std::vector<Point>& baselines, const Point& best,
                      double budget, const std::string& cost_axis, const std::string& loss_axis,
                      const std::string& title) {
  const double w = 760, h = 480, left = 80, right = 30, top = 50, bottom = 60;
  double x0 = budget, x1 = budget, y1 = 1e-12;
  auto extend = [&](const Point& p) {
    x0 = std::min(x0, p.cost);
    x1 = std::max(x1, p.cost);
    y1 = std::max(y1, p.loss);
  };
  for (const auto& p : front) extend(p);
  for (const auto& p : baselines) extend(p);
  const double pad = 0.05 * (x1 - x0 + 1e-30);
  x0 -= pad;
  x1 += pad;
  y1 *= 1.08;
  const double y0 = std::min(0.0, [&] {
    double m = 0;
    for (const auto& p : front) m = std::min(m, p.loss);
    for (const auto& p : baselines) m = std::min(m, p.loss);
    return m * 1.08;
  }());
  auto X = [&](double c) { return left + (c - x0) / (x1 - x0) * (w - left - right); };
  auto Y = [&](double l) { return h - bottom - (l - y0) / (y1 - y0) * (h - top - bottom); };
  std::ostringstream s;
  s.precision(4);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << left << "\" y=\"24\" font-size=\"14\">" << xml_escape(title) << "</text>\n"
    << "<line x1=\"" << left << "\" y1=\"" << h - bottom << "\" x2=\"" << w - right << "\" y2=\"" << h - bottom
    << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\""
    << h - bottom << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double c = x0 + (x1 - x0) * i / 4, l = y0 + (y1 - y0) * i / 4;
    s << "<text x=\"" << X(c) << "\" y=\"" << h - bottom + 16 << "\" text-anchor=\"middle\">" << c << "</text>\n"
      << "<text x=\"" << left - 6 << "\" y=\"" << Y(l) + 4 << "\" text-anchor=\"end\">" << l << "</text>\n";
  }
  s << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 18 << "\" text-anchor=\"middle\">" << xml_escape(cost_axis)
    << "</text>\n<text x=\"18\" y=\"" << (top + h - bottom) / 2 << "\" transform=\"rotate(-90 18 "
    << (top + h - bottom) / 2 << ")\" text-anchor=\"middle\">" << xml_escape(loss_axis) << "</text>\n";
  s << "<line x1=\"" << X(budget) << "\" y1=\"" << top << "\" x2=\"" << X(budget) << "\" y2=\"" << h - bottom
    << "\" stroke=\"#c33\" stroke-dasharray=\"5,4\"/>\n<text x=\"" << X(budget) + 4 << "\" y=\"" << top + 12
    << "\" fill=\"#c33\">budget</text>\n";
  if (!front.empty()) {
    s << "<polyline fill=\"none\" stroke=\"#4a78b5\" stroke-width=\"1.5\" points=\"";
    for (const auto& p : front) s << X(p.cost) << "," << Y(p.loss) << " ";
    s << "\"/>\n";
    for (const auto& p : front)
      s << "<circle cx=\"" << X(p.cost) << "\" cy=\"" << Y(p.loss) << "\" r=\"2.5\" fill=\"#4a78b5\"><title>cost "
        << p.cost << ", loss " << p.loss << "</title></circle>\n";
  }
  for (const auto& p : baselines)
    s << "<rect x=\"" << X(p.cost) - 4 << "\" y=\"" << Y(p.loss) - 4
      << "\" width=\"8\" height=\"8\" fill=\"#e8a33d\"/>\n<text x=\"" << X(p.cost) + 6 << "\" y=\"" << Y(p.loss) - 6
      << "\" fill=\"#9a5f00\">" << xml_escape(p.label) << "</text>\n";
  s << "<circle cx=\"" << X(best.cost) << "\" cy=\"" << Y(best.loss)
    << "\" r=\"7\" fill=\"none\" stroke=\"#2a2\" stroke-width=\"2\"/>\n<text x=\"" << X(best.cost) + 9 << "\" y=\""
    << Y(best.loss) + 14 << "\" fill=\"#2a2\">chosen (" << xml_escape(best.label) << ")</text>\n</svg>\n";
  return s.str();
}

}  // namespace adze
