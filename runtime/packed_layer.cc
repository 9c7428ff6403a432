#include "runtime/packed_layer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "compress/plan.h"
#include "core/error.h"
#include "runtime/kernels/qweights_decode.h"

namespace adze {
namespace packed {
namespace {

int index_bits_for(int m) { return static_cast<int>(std::ceil(std::log2(static_cast<double>(m)))); }
int64_t bytes_for_bits(int64_t bits) { return (bits + 7) / 8; }

// LSB-first: value i of width `bits` occupies bits [i·bits, (i+1)·bits) of the row, bit 0 the lowest of byte 0.
void put_bits(uint8_t* row, int64_t i, int bits, uint32_t value) {
  const int64_t offset = i * bits;
  const int64_t byte = offset >> 3;
  const int shift = static_cast<int>(offset & 7);
  row[byte] = static_cast<uint8_t>(row[byte] | (value << shift));
  if (shift + bits > 8) row[byte + 1] = static_cast<uint8_t>(row[byte + 1] | (value >> (8 - shift)));
}

inline uint32_t get_bits(const uint8_t* row, int64_t row_bytes, int64_t i, int bits) {
  const int64_t offset = i * bits;
  const int64_t byte = offset >> 3;
  const int shift = static_cast<int>(offset & 7);
  uint32_t word = row[byte];
  if (byte + 1 < row_bytes) word |= static_cast<uint32_t>(row[byte + 1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

std::string raw_bytes(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel() * c.element_size()));
}

int64_t qmin_of(const LayerConfig& c) { return traits_of(c.quantizer).min_code(c.weight_bits, c.symmetric); }

int64_t grid_rows_of(const LayerConfig& c, int64_t channels, int64_t reduction) {
  switch (c.granularity) {
    case Granularity::kPerTensor:
      return 1;
    case Granularity::kPerChannel:
      return channels;
    case Granularity::kPerGroup:
      return c.group_size > 0 ? channels * reduction / c.group_size : 0;
  }
  return channels;
}

bool asymmetric(const LayerConfig& c) { return traits_of(c.quantizer).zero_points && !c.symmetric; }

// What the integer kernels take for an Encoding (encoded layout [C, K]): the stored codes u = code − qmin, the
// kept mask, a value subtracted per row (zero point − qmin), the scales per (row, group); or why they cannot.
struct IntegerSource {
  std::vector<uint8_t> u;
  std::vector<char> keep;  // empty: dense
  std::vector<int32_t> offset;
  std::vector<float> scale;
  int64_t group = 0;
  std::string why;
  const bool* keep_ptr() const { return keep.empty() ? nullptr : reinterpret_cast<const bool*>(keep.data()); }
};

IntegerSource integer_source(const Encoding& e) {
  IntegerSource s;
  const LayerConfig& c = e.config;
  if (!c.quantized() || !traits_of(c.quantizer).affine) {
    s.why = c.quantized() ? std::string(traits_of(c.quantizer).name) + " weights" : "float weights";
    return s;
  }
  if (!c.symmetric && c.weight_bits == 8) {
    s.why = "asymmetric 8-bit weights (codes minus zero points need 9 bits)";
    return s;
  }
  const int64_t C = e.channels(), K = e.reduction(), qmin = qmin_of(c);
  const int64_t groups = c.granularity == Granularity::kPerGroup ? K / c.group_size : 1;
  s.group = groups == 1 ? K : c.group_size;
  const at::Tensor codes = e.codes.to(torch::kInt).contiguous().reshape({-1});
  const at::Tensor zp = e.zero_point.to(torch::kInt).contiguous(), scale = e.scale.to(torch::kFloat).contiguous();
  const int32_t* code = codes.data_ptr<int32_t>();
  s.u.resize(static_cast<std::size_t>(C * K));
  for (int64_t i = 0; i < C * K; ++i) s.u[static_cast<std::size_t>(i)] = static_cast<uint8_t>(code[i] - qmin);
  if (e.mask.defined() && c.sparsity == 0) {  // unstructured: dense, a pruned code being the zero point (0)
    const at::Tensor m = e.mask.to(torch::kBool).contiguous().reshape({-1});
    s.keep.assign(m.data_ptr<bool>(), m.data_ptr<bool>() + C * K);
  }
  const int64_t grid_rows = scale.numel();
  s.offset.resize(static_cast<std::size_t>(C));
  s.scale.resize(static_cast<std::size_t>(C * groups));
  for (int64_t r = 0; r < C; ++r)
    for (int64_t g = 0; g < groups; ++g) {  // the grid row of (r, g): one shared, one per row, or one per group
      const int64_t at = grid_rows == 1 ? 0 : grid_rows == C ? r : r * groups + g;
      const int32_t offset = zp.data_ptr<int32_t>()[at] - static_cast<int32_t>(qmin);
      if (g > 0 && offset != s.offset[static_cast<std::size_t>(r)]) {
        s.why = "zero points that differ within a row";
        return s;
      }
      s.offset[static_cast<std::size_t>(r)] = offset;
      s.scale[static_cast<std::size_t>(r * groups + g)] = scale.data_ptr<float>()[at];
    }
  s.why = runtime::qweights_unsupported(C, K, c.weight_bits, s.u.data(), s.keep_ptr(), s.offset.data(), s.group);
  return s;
}

const char* to_string(runtime::QPattern p) {
  return p == runtime::QPattern::kDense ? "dense" : p == runtime::QPattern::kMask ? "mask" : "pairs";
}

std::string bytes_of(const void* data, std::size_t bytes) { return std::string(static_cast<const char*>(data), bytes); }

}  // namespace

PackedLayer pack_layer(const std::string& weight_name, const Encoding& e, bool kernel_layout) {
  const LayerConfig& c = e.config;
  const int64_t C = e.channels(), K = e.reduction();
  const std::string where = "packed: weight '" + weight_name + "'";
  PackedLayer out;
  auto& h = out.header;
  h["weight"] = weight_name;
  h["scheme"] = !c.quantized() ? kFloatScheme : traits_of(c.quantizer).packed_scheme;
  h["bits"] = c.quantized() ? c.weight_bits : 32;
  h["shape"] = e.shape;
  h["order"] = e.order;
  h["config"] = to_json(c);
  h["channels"] = C;
  h["reduction"] = K;

  // Kept positions per row: every position, the N of each group of M the mask keeps, or with unstructured
  // sparsity (a bitmap index) the row's kept ones, rows padded to the fullest row's count.
  int64_t kept = K;
  at::Tensor mask;
  const bool bitmap = e.mask.defined() && c.sparsity > 0;
  std::vector<int64_t> row_kept(static_cast<std::size_t>(C), K);
  if (e.mask.defined()) {
    if (!c.nm.enabled() && !bitmap)
      throw Error(ErrorKind::kUnsupported, where + ": a mask with neither an N:M pattern nor a sparsity ratio");
    mask = e.mask.to(torch::kBool).contiguous().reshape({C, K});
    if (!bitmap &&
        !torch::equal(mask.reshape({C, K / c.nm.m, c.nm.m}).sum(2), torch::full({C, K / c.nm.m}, c.nm.n, torch::kLong)))
      throw Error(ErrorKind::kUnsupported,
                  where + ": the mask does not keep exactly " + c.nm.to_string() + " of every group");
    const at::Tensor counts = mask.sum(1).contiguous();
    for (int64_t r = 0; r < C; ++r) row_kept[static_cast<std::size_t>(r)] = counts.data_ptr<int64_t>()[r];
    kept = *std::max_element(row_kept.begin(), row_kept.end());
  }
  h["kept_per_row"] = kept;
  std::vector<int32_t> positions(static_cast<std::size_t>(C * kept), 0);  // a short row's tail stays 0
  {
    const bool* m = mask.defined() ? mask.data_ptr<bool>() : nullptr;
    for (int64_t r = 0; r < C; ++r) {
      std::size_t i = static_cast<std::size_t>(r * kept);
      for (int64_t k = 0; k < K; ++k)
        if (!m || m[r * K + k]) positions[i++] = static_cast<int32_t>(k);
    }
  }
  auto tensor_name = [&](const char* part) { return weight_name + ":" + part; };
  auto add = [&](const char* part, const std::string& dtype, std::vector<int64_t> shape, std::string bytes) {
    h["tensors"][part] = tensor_name(part);
    out.tensors.push_back({tensor_name(part), dtype, std::move(shape), std::move(bytes)});
  };

  // Layers the integer kernels take are stored in the layout they read (kernels/qgemm.h): opening maps them.
  std::optional<runtime::PackedQWeights> kernel;
  if (const IntegerSource src = kernel_layout && !bitmap ? integer_source(e) : IntegerSource{};
      kernel_layout && !bitmap && src.why.empty()) {
    kernel = runtime::pack_qweights(C, K, c.weight_bits, src.u.data(), src.keep_ptr(), src.offset.data(),
                                    src.scale.data(), src.group);
    if (!runtime::qweights_unstorable(kernel->layout).empty()) kernel.reset();
  }
  if (kernel) {
    const runtime::QWeightLayout& l = kernel->layout;
    h["kernel"] = {{"pattern", to_string(l.pattern)},
                   {"k_pad", l.k_pad},
                   {"kept_pad", l.kept_pad},
                   {"group", l.group},
                   {"groups", l.groups},
                   {"small", l.small}};
    add("planes", "U8", {C, l.plane_row_bytes()}, bytes_of(kernel->planes.data(), kernel->planes.size()));
    if (l.pattern == runtime::QPattern::kMask)
      add("mask", "U8", {C, l.mask_row_words() * 8}, bytes_of(kernel->mask.data(), kernel->mask.size() * 8));
    add("offset", "I32", {C}, bytes_of(kernel->offset.data(), kernel->offset.size() * 4));
    add("kernel_scale", "F32", {C * l.groups}, bytes_of(kernel->scale.data(), kernel->scale.size() * 4));
    add("wsum", "I32", {C * l.groups}, bytes_of(kernel->wsum.data(), kernel->wsum.size() * 4));
  } else if (c.quantized()) {
    const int bits = c.weight_bits;
    const int64_t qmin = qmin_of(c);
    const int64_t row_bytes = bytes_for_bits(kept * bits);
    h["grid_rows"] = e.scale.numel();
    h["row_bytes"] = row_bytes;
    const at::Tensor codes = e.codes.to(torch::kInt).contiguous().reshape({-1});
    const int32_t* code = codes.data_ptr<int32_t>();
    std::string packed(static_cast<std::size_t>(C * row_bytes), '\0');
    for (int64_t r = 0; r < C; ++r) {
      auto* row = reinterpret_cast<uint8_t*>(&packed[static_cast<std::size_t>(r * row_bytes)]);
      for (int64_t i = 0; i < row_kept[static_cast<std::size_t>(r)]; ++i) {
        const int64_t u = code[r * K + positions[static_cast<std::size_t>(r * kept + i)]] - qmin;
        if (u < 0 || u >= (int64_t{1} << bits))
          throw Error(ErrorKind::kInternal,
                      where + ": code " + std::to_string(u + qmin) + " outside " + std::to_string(bits) + " bits");
        put_bits(row, i, bits, static_cast<uint32_t>(u));
      }
    }
    add("codes", "U8", {C, row_bytes}, std::move(packed));
    add("scale", "F32", {e.scale.numel()}, raw_bytes(e.scale.to(torch::kFloat)));
    if (asymmetric(c)) add("zero_point", "U8", {e.zero_point.numel()}, raw_bytes(e.zero_point.to(torch::kByte)));
  } else {
    const at::Tensor values = e.values.to(torch::kFloat).contiguous().reshape({-1});
    std::string bytes(static_cast<std::size_t>(C * kept) * sizeof(float), '\0');
    auto* dst = reinterpret_cast<float*>(&bytes[0]);
    for (int64_t r = 0; r < C; ++r)
      for (int64_t i = 0; i < row_kept[static_cast<std::size_t>(r)]; ++i)
        dst[r * kept + i] = values.data_ptr<float>()[r * K + positions[static_cast<std::size_t>(r * kept + i)]];
    add("values", "F32", {C, kept}, std::move(bytes));
  }
  if (bitmap) {  // bit k of the row (LSB first) set where position k is kept
    const int64_t index_row_bytes = bytes_for_bits(K);
    h["index"] = kBitmapIndexScheme;
    h["index_row_bytes"] = index_row_bytes;
    std::string index(static_cast<std::size_t>(C * index_row_bytes), '\0');
    const bool* m = mask.data_ptr<bool>();
    for (int64_t r = 0; r < C; ++r)
      for (int64_t k = 0; k < K; ++k)
        if (m[r * K + k])
          put_bits(reinterpret_cast<uint8_t*>(&index[static_cast<std::size_t>(r * index_row_bytes)]), k, 1, 1);
    add("index", "U8", {C, index_row_bytes}, std::move(index));
  } else if (mask.defined() && !kernel) {
    const int m = c.nm.m, ib = index_bits_for(m);
    const int64_t index_row_bytes = bytes_for_bits(kept * ib);
    h["index"] = kNMIndexScheme;
    h["index_row_bytes"] = index_row_bytes;
    std::string index(static_cast<std::size_t>(C * index_row_bytes), '\0');
    for (int64_t r = 0; r < C; ++r) {
      auto* row = reinterpret_cast<uint8_t*>(&index[static_cast<std::size_t>(r * index_row_bytes)]);
      for (int64_t i = 0; i < kept; ++i)
        put_bits(row, i, ib, static_cast<uint32_t>(positions[static_cast<std::size_t>(r * kept + i)] % m));
    }
    add("index", "U8", {C, index_row_bytes}, std::move(index));
  }
  if (e.permutation.defined())
    add("permutation", "I32", {e.permutation.numel()}, raw_bytes(e.permutation.to(torch::kInt)));
  return out;
}

LayerView::LayerView(const nlohmann::json& h, const std::map<std::string, TensorSpan>& tensors,
                     const std::string& where)
    : where_(where) {
  auto bad = [&](const std::string& what) { return Error(ErrorKind::kIo, where + ": " + what); };
  try {
    scheme_ = h.at("scheme").get<std::string>();
    bits_ = h.at("bits").get<int>();
    layout_.shape = h.at("shape").get<std::vector<int64_t>>();
    layout_.order = h.at("order").get<std::vector<int64_t>>();
    channels_ = h.at("channels").get<int64_t>();
    reduction_ = h.at("reduction").get<int64_t>();
    kept_ = h.at("kept_per_row").get<int64_t>();
    layout_.config =
        parse_plan(nlohmann::ordered_json{{"defaults", nlohmann::ordered_json::parse(h.at("config").dump())}}, where)
            .defaults;
  } catch (const Error& e) {
    throw bad(e.what());
  } catch (const std::exception& e) {
    throw bad(std::string("malformed layer entry (") + e.what() + ")");
  }
  const LayerConfig& c = layout_.config;
  // The layout: the order permutes the shape's dims, and the encoded matrix is [C, K].
  std::vector<bool> seen(layout_.shape.size(), false);
  for (int64_t d : layout_.order) {
    if (d < 0 || d >= static_cast<int64_t>(seen.size()) || seen[static_cast<std::size_t>(d)])
      throw bad("order is not a permutation of the shape's dims");
    seen[static_cast<std::size_t>(d)] = true;
  }
  if (layout_.order.size() != layout_.shape.size() || layout_.shape.empty()) throw bad("order does not fit the shape");
  for (int64_t d : layout_.shape)
    if (d <= 0) throw bad("shape has a dimension <= 0");
  if (channels_ != layout_.shape[static_cast<std::size_t>(layout_.order[0])] ||
      channels_ * reduction_ != shape_numel(layout_.shape))
    throw bad("channels × reduction do not fit the shape");
  const std::string expected_scheme = !c.quantized() ? kFloatScheme : traits_of(c.quantizer).packed_scheme;
  if (scheme_ != expected_scheme) throw bad("scheme '" + scheme_ + "' is not the config's '" + expected_scheme + "'");
  if (bits_ != (c.quantized() ? c.weight_bits : 32))
    throw bad("bits " + std::to_string(bits_) + " disagree with the config");
  const int64_t expected_kept = c.nm.enabled() ? reduction_ / c.nm.m * c.nm.n : reduction_;
  bitmap_ = c.sparsity > 0;  // kept_per_row is then the fullest row's count
  if ((bitmap_ ? kept_ < 0 || kept_ > expected_kept : kept_ != expected_kept) ||
      (c.nm.enabled() && reduction_ % c.nm.m != 0))
    throw bad("kept_per_row does not fit the N:M pattern");
  if (bitmap_ && (h.contains("kernel") || h.value("index", "") != kBitmapIndexScheme))
    throw bad(std::string("a layer with unstructured sparsity needs the '") + kBitmapIndexScheme + "' index");

  const TensorFinder find = [&](const char* part, const std::string& dtype, int64_t bytes) -> const uint8_t* {
    const auto& names = h.contains("tensors") && h["tensors"].is_object() ? h["tensors"] : nlohmann::json::object();
    if (!names.contains(part) || !names[part].is_string()) throw bad(std::string("names no '") + part + "' tensor");
    const auto it = tensors.find(names[part].get<std::string>());
    if (it == tensors.end()) throw bad("tensor '" + names[part].get<std::string>() + "' is missing");
    if (it->second.dtype != dtype || it->second.bytes != bytes)
      throw bad("tensor '" + it->first + "' is " + it->second.dtype + " of " + std::to_string(it->second.bytes) +
                " bytes, expected " + dtype + " of " + std::to_string(bytes));
    return it->second.data;
  };
  if (c.quantized()) {
    qmin_ = qmin_of(c);
    grid_rows_ = grid_rows_of(c, channels_, reduction_);
    if (grid_rows_ <= 0 || (channels_ * reduction_) % grid_rows_ != 0)
      throw bad("group_size does not divide the weight");
  }
  if (h.contains("kernel")) {
    read_kernel_layout(h.at("kernel"), find);
  } else if (c.quantized()) {
    row_bytes_ = bytes_for_bits(kept_ * bits_);
    codes_ = find("codes", "U8", channels_ * row_bytes_);
    scale_ = reinterpret_cast<const float*>(find("scale", "F32", grid_rows_ * 4));
    for (int64_t g = 0; g < grid_rows_; ++g)
      if (!(scale_[g] > 0.0f) || !std::isfinite(scale_[g]))
        throw bad("scale " + std::to_string(g) + " is not a positive number");
    if (asymmetric(c)) {
      zero_point_ = find("zero_point", "U8", grid_rows_);
      for (int64_t g = 0; g < grid_rows_; ++g)
        if (zero_point_[g] >= (1u << bits_))
          throw bad("zero point " + std::to_string(g) + " outside " + std::to_string(bits_) + " bits");
    }
  } else {
    values_ = reinterpret_cast<const float*>(find("values", "F32", channels_ * kept_ * 4));
  }
  if (bitmap_) {
    index_bits_ = 1;
    index_row_bytes_ = bytes_for_bits(reduction_);
    index_ = find("index", "U8", channels_ * index_row_bytes_);
  } else if (c.nm.enabled() && !kernel_) {
    index_bits_ = index_bits_for(c.nm.m);
    index_row_bytes_ = bytes_for_bits(kept_ * index_bits_);
    index_ = find("index", "U8", channels_ * index_row_bytes_);
  }
  if (c.permute) {
    const auto& names = h.contains("tensors") ? h["tensors"] : nlohmann::json::object();
    const auto it = names.contains("permutation") && names["permutation"].is_string()
                        ? tensors.find(names["permutation"].get<std::string>())
                        : tensors.end();
    if (it == tensors.end() || it->second.dtype != "I32" || it->second.shape.size() != 1)
      throw bad("a permuted layer needs an I32 'permutation' tensor");
    const int64_t run = it->second.shape[0];
    if (run <= 0 || reduction_ % run != 0)
      throw bad("the permutation's length does not divide the reduction dimension");
    std::vector<int32_t> order(static_cast<std::size_t>(run));
    std::memcpy(order.data(), it->second.data, static_cast<std::size_t>(run) * 4);
    std::vector<bool> hit(static_cast<std::size_t>(run), false);
    for (int32_t v : order) {
      if (v < 0 || v >= run || hit[static_cast<std::size_t>(v)]) throw bad("permutation is not a permutation");
      hit[static_cast<std::size_t>(v)] = true;
    }
    layout_.permutation = torch::tensor(std::vector<int64_t>(order.begin(), order.end()), torch::kLong);
    for (int64_t start = 0; start < reduction_; start += run)
      for (int32_t v : order) gather_.push_back(start + v);
  }
  if (!kernel_) build_integer_weights();
}

// A layer stored in the integer kernels' layout: every field checked against the config and the tensors, so
// that the kernels can read the mapping as it is.
void LayerView::read_kernel_layout(const nlohmann::json& k, const TensorFinder& find) {
  auto bad = [&](const std::string& what) { return Error(ErrorKind::kIo, where_ + ": kernel layout: " + what); };
  const LayerConfig& c = layout_.config;
  runtime::QWeightLayout& l = kernel_view_.layout;
  try {
    const std::string pattern = k.at("pattern").get<std::string>();
    l.pattern = pattern == "dense"   ? runtime::QPattern::kDense
                : pattern == "mask"  ? runtime::QPattern::kMask
                : pattern == "pairs" ? runtime::QPattern::kPairs
                                     : throw bad("pattern '" + pattern + "' is not dense, mask or pairs");
    l.k_pad = k.at("k_pad").get<int64_t>();
    l.kept_pad = k.at("kept_pad").get<int64_t>();
    l.group = k.at("group").get<int64_t>();
    l.groups = k.at("groups").get<int64_t>();
    l.small = k.at("small").get<bool>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw bad(std::string("malformed (") + e.what() + ")");
  }
  l.rows = channels_;
  l.k = reduction_;
  l.bits = bits_;
  l.kept = kept_;
  // What pack_qweights derives from the config, so that a file cannot make a kernel read past a row.
  const bool pairs = l.pattern == runtime::QPattern::kPairs;
  const int64_t groups = c.granularity == Granularity::kPerGroup ? reduction_ / c.group_size : 1;
  const int64_t k_pad = (reduction_ + (pairs ? 127 : 63)) / (pairs ? 128 : 64) * (pairs ? 128 : 64);
  const int64_t kept_pad = pairs ? k_pad / 2 : c.nm.enabled() ? (std::max<int64_t>(kept_, 1) + 63) / 64 * 64 : k_pad;
  if (!c.quantized() || !traits_of(c.quantizer).affine || (pairs && (!c.nm.enabled() || reduction_ % 4 != 0)) ||
      (l.pattern == runtime::QPattern::kDense) == c.nm.enabled() || l.k_pad != k_pad || l.kept_pad != kept_pad ||
      l.groups != groups || l.group != (groups == 1 ? k_pad : c.group_size) || (groups > 1 && l.group % 32 != 0))
    throw bad("its fields disagree with the layer's config");
  kernel_view_.planes = find("planes", "U8", channels_ * l.plane_row_bytes());
  if (l.pattern == runtime::QPattern::kMask) {
    // Stored as bytes, so the file aligns it to 1 only: the kernels read 64-bit words, which must be aligned
    // (C++ makes a misaligned load undefined), so a misaligned mask is copied once.
    const int64_t bytes = channels_ * l.mask_row_words() * 8;
    const uint8_t* mask = find("mask", "U8", bytes);
    if (reinterpret_cast<uintptr_t>(mask) % alignof(uint64_t) == 0) {
      kernel_view_.mask = reinterpret_cast<const uint64_t*>(mask);
    } else {
      mask_copy_.resize(static_cast<std::size_t>(bytes / 8));
      std::memcpy(mask_copy_.data(), mask, static_cast<std::size_t>(bytes));
      kernel_view_.mask = mask_copy_.data();
    }
  }
  kernel_view_.offset = reinterpret_cast<const int32_t*>(find("offset", "I32", channels_ * 4));
  kernel_view_.scale = reinterpret_cast<const float*>(find("kernel_scale", "F32", channels_ * groups * 4));
  kernel_view_.wsum = reinterpret_cast<const int32_t*>(find("wsum", "I32", channels_ * groups * 4));
  for (int64_t i = 0; i < channels_ * groups; ++i)
    if (!(kernel_view_.scale[i] > 0.0f) || !std::isfinite(kernel_view_.scale[i]))
      throw bad("scale " + std::to_string(i) + " is not a positive number");
  for (int64_t r = 0; r < channels_; ++r) {  // signed weights u − offset must fit 8 bits
    const int32_t o = kernel_view_.offset[r];
    if (o < 0 || o >= (1 << bits_) || (bits_ == 8 && o != 128))
      throw bad("offset " + std::to_string(o) + " of row " + std::to_string(r) + " outside its range");
  }
  if (const std::string why = runtime::qweights_corruption(kernel_view_); !why.empty()) throw bad(why);
  kernel_ = true;
}

// A layer stored in the older form (codes and index bits): packed for the integer kernels here, at open.
void LayerView::build_integer_weights() {
  const IntegerSource src = integer_source(encoding());
  integer_unsupported_ = src.why;
  if (!src.why.empty()) return;
  integer_ = std::make_shared<runtime::PackedQWeights>(runtime::pack_qweights(
      channels_, reduction_, bits_, src.u.data(), src.keep_ptr(), src.offset.data(), src.scale.data(), src.group));
  kernel_view_ = integer_->view();
}

int64_t LayerView::unpack_row(int64_t c, int32_t* positions, uint8_t* codes) const {
  const LayerConfig& cfg = layout_.config;
  int64_t kept = kept_;
  if (bitmap_) {
    const uint8_t* row = index_ + c * index_row_bytes_;
    kept = 0;
    for (int64_t k = 0; k < reduction_; ++k)
      if (row[k >> 3] >> (k & 7) & 1) {
        if (kept == kept_)
          throw Error(ErrorKind::kIo, "packed: corrupted bitmap index in row " + std::to_string(c) +
                                          " (keeps more than " + std::to_string(kept_) + ")");
        positions[kept++] = static_cast<int32_t>(k);
      }
  } else if (index_) {
    const uint8_t* row = index_ + c * index_row_bytes_;
    const int n = cfg.nm.n, m = cfg.nm.m;
    for (int64_t i = 0; i < kept_; ++i) {
      const int64_t group = i / n;
      const auto within = static_cast<int64_t>(get_bits(row, index_row_bytes_, i, index_bits_));
      positions[i] = static_cast<int32_t>(group * m + within);
      if (within >= m || (i % n != 0 && positions[i] <= positions[i - 1]))
        throw Error(ErrorKind::kIo, "packed: corrupted N:M index in row " + std::to_string(c));
    }
  } else {
    for (int64_t i = 0; i < kept_; ++i) positions[i] = static_cast<int32_t>(i);
  }
  if (codes_) {
    const uint8_t* row = codes_ + c * row_bytes_;
    for (int64_t i = 0; i < kept; ++i) codes[i] = static_cast<uint8_t>(get_bits(row, row_bytes_, i, bits_));
  }
  return kept;
}

void LayerView::decode_row(int64_t c, float* out, int32_t* positions, uint8_t* codes) const {
  if (kernel_) {  // positions and codes: scratch of reduction() entries
    auto* values = reinterpret_cast<int8_t*>(positions);
    runtime::decode_row(kernel_view_, c, values, codes);
    const runtime::QWeightLayout& l = kernel_view_.layout;
    const float* scale = kernel_view_.scale + c * l.groups;
    const int64_t group = l.groups == 1 ? reduction_ : l.group;
    for (int64_t g0 = 0; g0 < reduction_; g0 += group) {  // a group at a time, its scale hoisted: in vectors
      const float s = scale[g0 / group];
      for (int64_t j = g0; j < std::min(reduction_, g0 + group); ++j) out[j] = static_cast<float>(values[j]) * s;
    }
    return;
  }
  const int64_t kept = unpack_row(c, positions, codes);
  std::fill(out, out + reduction_, 0.0f);
  if (values_) {
    for (int64_t i = 0; i < kept; ++i) out[positions[i]] = values_[c * kept_ + i];
    return;
  }
  const LayerConfig& cfg = layout_.config;
  const SchemeTraits& scheme = traits_of(cfg.quantizer);
  const int64_t max_code = scheme.max_code(cfg.weight_bits, cfg.symmetric);
  const int64_t per_grid_row = channels_ * reduction_ / grid_rows_;
  for (int64_t i = 0; i < kept; ++i) {
    const int64_t k = positions[i];
    const int64_t g = grid_rows_ == 1 ? 0 : (c * reduction_ + k) / per_grid_row;
    const int64_t code = static_cast<int64_t>(codes[i]) + qmin_;
    if (code > max_code)  // the stored width holds codes the grid has not (a power-of-two grid's 2^(b−1))
      throw Error(ErrorKind::kIo,
                  std::string("packed: corrupted ") + scheme.name + " code in row " + std::to_string(c));
    out[k] = scheme.value(code, scale_[g], zero_point_ ? static_cast<float>(zero_point_[g]) : 0.0f, cfg.weight_bits);
  }
}

void LayerView::decode_rows(int64_t begin, int64_t end, float* out) const {
  std::vector<int32_t> positions(static_cast<std::size_t>(reduction_));
  std::vector<uint8_t> codes(static_cast<std::size_t>(reduction_));
  for (int64_t c = begin; c < end; ++c) decode_row(c, out + (c - begin) * reduction_, positions.data(), codes.data());
}

const float* LayerView::decoded_table() const {
  if (channels_ * reduction_ * static_cast<int64_t>(sizeof(float)) > kDecodedTableMaxBytes) return nullptr;
  std::call_once(table_once_, [&] {
    table_.resize(static_cast<std::size_t>(channels_ * reduction_));
    decode_rows(0, channels_, table_.data());
  });
  return table_.data();
}

void LayerView::decode_listed_rows(const int64_t* rows, int64_t count, float* out) const {
  const float* const table = decoded_table();
  std::vector<int32_t> positions;
  std::vector<uint8_t> codes;
  if (!table) {
    positions.resize(static_cast<std::size_t>(reduction_));
    codes.resize(static_cast<std::size_t>(reduction_));
  }
  for (int64_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= channels_)
      throw Error(ErrorKind::kInvalidArgument,
                  "packed: row " + std::to_string(rows[i]) + " outside [0, " + std::to_string(channels_) + ")");
    if (table)
      std::copy_n(table + rows[i] * reduction_, reduction_, out + i * reduction_);
    else
      decode_row(rows[i], out + i * reduction_, positions.data(), codes.data());
  }
}

const runtime::QPanels* LayerView::panels() const {
  const runtime::QWeights* w = integer_weights();
  if (!w) return nullptr;
  std::call_once(panels_once_, [&] {
    panels_ = std::make_unique<const runtime::QPanels>(*w, active_isa(), gather_.empty() ? nullptr : gather_.data());
  });
  return panels_.get();
}

Encoding LayerView::encoding() const {
  Encoding e = layout_;
  const LayerConfig& c = layout_.config;
  const int64_t C = channels_, K = reduction_;
  if (kernel_) {  // codes are u + qmin = value + offset + qmin; a pruned position holds its zero point
    const runtime::QWeightLayout& l = kernel_view_.layout;
    at::Tensor codes = torch::empty({C, K}, torch::kInt), mask = torch::empty({C, K}, torch::kBool);
    std::vector<int8_t> values(static_cast<std::size_t>(K));
    std::vector<uint8_t> kept(static_cast<std::size_t>(K));
    for (int64_t r = 0; r < C; ++r) {
      runtime::decode_row(kernel_view_, r, values.data(), kept.data());
      const int32_t zp = kernel_view_.offset[r] + static_cast<int32_t>(qmin_);
      for (int64_t j = 0; j < K; ++j) {
        codes.data_ptr<int32_t>()[r * K + j] = values[static_cast<std::size_t>(j)] + zp;
        mask.data_ptr<bool>()[r * K + j] = kept[static_cast<std::size_t>(j)] != 0;
      }
    }
    // The grid's rows: one (per tensor), one per output row, or the row's groups in order.
    std::vector<float> scale(static_cast<std::size_t>(grid_rows_));
    std::vector<int32_t> zero(static_cast<std::size_t>(grid_rows_));
    for (int64_t g = 0; g < grid_rows_; ++g) {
      const int64_t row = grid_rows_ == 1 ? 0 : grid_rows_ == C ? g : g / l.groups;
      scale[static_cast<std::size_t>(g)] = kernel_view_.scale[grid_rows_ == 1 ? 0 : g];  // same order as the grid
      zero[static_cast<std::size_t>(g)] = kernel_view_.offset[row] + static_cast<int32_t>(qmin_);
    }
    e.scale = torch::tensor(scale, torch::kFloat);
    e.zero_point = torch::tensor(zero, torch::kInt);
    e.codes = codes.to(torch::kChar).reshape({grid_rows_, -1});
    if (c.nm.enabled()) e.mask = mask;
    return e;
  }
  std::vector<int32_t> positions(static_cast<std::size_t>(kept_));
  std::vector<uint8_t> codes(static_cast<std::size_t>(kept_));
  at::Tensor mask;
  if (index_) mask = torch::zeros({C, K}, torch::kBool);
  bool* keep = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  if (c.quantized()) {
    const bool wide = asymmetric(c) && c.weight_bits == 8;  // as quantize_rows: 0..255 needs int16
    e.scale = torch::from_blob(const_cast<float*>(scale_), {grid_rows_}, torch::kFloat).clone();
    e.zero_point = zero_point_
                       ? torch::from_blob(const_cast<uint8_t*>(zero_point_), {grid_rows_}, torch::kByte).to(torch::kInt)
                       : torch::zeros({grid_rows_}, torch::kInt);
    // Every position starts at its grid row's zero point (what a pruned weight holds), then the kept codes.
    at::Tensor all = e.zero_point.repeat_interleave(C * K / grid_rows_).contiguous();
    int32_t* flat = all.data_ptr<int32_t>();
    for (int64_t r = 0; r < C; ++r) {
      const int64_t kept = unpack_row(r, positions.data(), codes.data());
      for (int64_t i = 0; i < kept; ++i)
        flat[r * K + positions[static_cast<std::size_t>(i)]] =
            static_cast<int32_t>(codes[static_cast<std::size_t>(i)] + qmin_);
      if (keep)
        for (int64_t i = 0; i < kept; ++i) keep[r * K + positions[static_cast<std::size_t>(i)]] = true;
    }
    e.codes = all.to(wide ? torch::kShort : torch::kChar).reshape({grid_rows_, -1});
  } else {
    e.values = torch::zeros({C, K}, torch::kFloat);
    float* v = e.values.data_ptr<float>();
    for (int64_t r = 0; r < C; ++r) {
      const int64_t kept = unpack_row(r, positions.data(), codes.data());
      for (int64_t i = 0; i < kept; ++i) v[r * K + positions[static_cast<std::size_t>(i)]] = values_[r * kept_ + i];
      if (keep)
        for (int64_t i = 0; i < kept; ++i) keep[r * K + positions[static_cast<std::size_t>(i)]] = true;
    }
  }
  e.mask = mask;
  return e;
}

}  // namespace packed
}  // namespace adze
