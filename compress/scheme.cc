#include "compress/scheme.h"

#include "core/error.h"

namespace adze {

#define ADZE_SCHEME(row) SchemeTraits row();
#include "core/builtins.def"

const std::vector<SchemeTraits>& schemes() {
  static const std::vector<SchemeTraits> table = [] {
    std::vector<SchemeTraits> rows = {
#define ADZE_SCHEME(row) row(),
#include "core/builtins.def"
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (static_cast<std::size_t>(rows[i].id) != i)
        throw Error(ErrorKind::kInternal, std::string("scheme '") + rows[i].name + "' is out of id order");
    return rows;
  }();
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
