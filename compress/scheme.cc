#include "compress/scheme.h"

#include "core/error.h"
#include "quantize/uniform.h"

namespace adze {
namespace {

int64_t uniform_min_code(int bits, bool symmetric) {
  UniformSpec spec;
  spec.bits = bits;
  spec.symmetric = symmetric;
  return spec.qmin();
}

// Sign and magnitude: 0 and ±1 .. ±(2^(bits−1) − 1), the largest level being the scale.
int64_t pow2_min_code(int bits, bool) { return -((int64_t{1} << (bits - 1)) - 1); }

}  // namespace

const std::vector<SchemeTraits>& schemes() {
  static const std::vector<SchemeTraits> table = {
      {Quantizer::kUniform, "uniform", "adze.uniform.v1", "uniform grid: (code − zero point) · scale",
       /*zero_points=*/true, /*per_group=*/true, /*affine=*/true, uniform_min_code},
      {Quantizer::kPow2, "pow2", "adze.pow2.v1", "powers of two: ±scale · 2^(level − levels), or 0",
       /*zero_points=*/false, /*per_group=*/false, /*affine=*/false, pow2_min_code},
  };
  return table;
}

const SchemeTraits& traits_of(Quantizer q) {
  for (const auto& s : schemes())
    if (s.id == q) return s;
  throw Error(ErrorKind::kInternal, "no scheme with id " + std::to_string(static_cast<int>(q)));
}

const SchemeTraits* scheme_named(const std::string& name) {
  for (const auto& s : schemes())
    if (name == s.name) return &s;
  return nullptr;
}

std::string scheme_names() {
  std::string names;
  const auto& all = schemes();
  for (std::size_t i = 0; i < all.size(); ++i)
    names += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + std::string(all[i].name);
  return names;
}

}  // namespace adze
