// write_packed: the traced graph as a list of ops (runtime/FORMAT.md, "Graph"), the float tensors, the packed layers.
#include "exporters/packed/packed_writer.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "model/batch_symbolic.h"
#include "runtime/packed_layer.h"
#include "runtime/packed_model.h"
#include "runtime/safetensors.h"

namespace adze {
namespace packed {
namespace {

using nlohmann::ordered_json;
using torch::jit::Node;
using torch::jit::Value;

bool is_matmul(const Node* n) { return n->kind() == c10::aten::mm || n->kind() == c10::aten::matmul; }

class GraphWriter {
 public:
  GraphWriter(const CompressedModel& m, bool dynamic_batch) : m_(m), dynamic_batch_(dynamic_batch) {
    for (const auto& l : m.table.layers)
      if (m.encodings.count(l.name)) layer_of_weight_[l.weight] = l.name;
  }

  ordered_json write(std::vector<RawTensor>& tensors) {
    const auto& graph = m_.model.graph();
    names_[graph.inputs()[0]] = "input";
    ordered_json nodes = ordered_json::array();
    compose_smartdeal_weights(nodes);
    for (const Node* n : graph.nodes()) {
      const std::string kind = n->kind().toQualString();
      if (kind == "prim::Constant" || kind == "prim::TupleConstruct") continue;
      if (kind == "prim::ListConstruct" && constant_list(n->output())) continue;
      if (fused_transpose(n)) continue;
      ordered_json node;
      if (kind == "prim::ListConstruct" || kind == "prim::ListUnpack") {
        node["op"] = kind;
        node["type"] = (kind == "prim::ListConstruct" ? n->output() : n->input(0))->type()->annotation_str();
      } else if (auto packed = packed_op(n); !packed.empty()) {
        node = std::move(packed);
        for (auto& first : pending_) nodes.push_back(std::move(first));  // a decomposed layer's first factor
        pending_.clear();
      } else {
        const auto* schema = n->maybeSchema();
        if (!schema) throw Error(ErrorKind::kUnsupported, "packed: no schema for " + kind);
        node["op"] = schema->name();
        node["overload"] = schema->overload_name();
      }
      if (!node.contains("in")) {  // every input in order; packed ops name their own
        ordered_json in = ordered_json::array();
        for (const Value* v : n->inputs()) in.push_back(ref(v));
        node["in"] = std::move(in);
      }
      ordered_json out = ordered_json::array();
      for (const Value* v : n->outputs()) {
        names_[v] = "v" + std::to_string(names_.size());
        out.push_back(names_[v]);
      }
      node["out"] = std::move(out);
      nodes.push_back(std::move(node));
    }
    const Value* result = graph.outputs()[0];
    if (result->node()->kind() == c10::prim::TupleConstruct) result = result->node()->input(0);
    for (auto& t : tensors_) tensors.push_back(std::move(t));
    return {{"nodes", std::move(nodes)}, {"output", name(result)}};
  }

 private:
  // The packed layer whose weight `v` is (null for a SmartDeal layer's: its ops read the composed weight).
  const std::string* layer_of(const Value* v) const {
    const NamedTensor* t = m_.model.tensor_of(v);
    if (!t) return nullptr;
    const auto it = layer_of_weight_.find(t->name);
    return it == layer_of_weight_.end() || smartdeal(it->second) ? nullptr : &it->second;
  }
  // The node output that holds a SmartDeal layer's composed weight, for `v` that weight (else null).
  const std::string* smartdeal_weight(const Value* v) const {
    const NamedTensor* t = m_.model.tensor_of(v);
    if (!t) return nullptr;
    const auto it = layer_of_weight_.find(t->name);
    if (it == layer_of_weight_.end()) return nullptr;
    const auto s = smartdeal_.find(it->second);
    return s == smartdeal_.end() ? nullptr : &s->second;
  }
  const std::vector<int64_t>& order_of(const std::string& layer) const { return m_.encodings.at(layer).order; }

  // The packed weight W that `v` is Wᵀ of, for x @ v: t(W) with W's encoded layout [C, K] = W, or W itself
  // when the encoded layout is Wᵀ.
  const std::string* transposed_weight(const Value* v) const {
    if (v->node()->kind() == c10::aten::t) {
      const std::string* l = layer_of(v->node()->input(0));
      return l && order_of(*l) == std::vector<int64_t>{0, 1} ? l : nullptr;
    }
    const std::string* l = layer_of(v);
    return l && order_of(*l) == std::vector<int64_t>{1, 0} ? l : nullptr;
  }
  // aten::t of a packed weight whose every use is a matmul's right operand: the matmul reads it packed.
  bool fused_transpose(const Node* n) const {
    if (n->kind() != c10::aten::t || !transposed_weight(n->output())) return false;
    for (const auto& use : n->output()->uses())
      if (!is_matmul(use.user) || use.offset != 1) return false;
    return true;
  }
  bool lowrank(const std::string& layer) const {
    return m_.encodings.at(layer).config.decompose == Decomposition::kLowRank;
  }
  bool monarch(const std::string& layer) const {
    return m_.encodings.at(layer).config.decompose == Decomposition::kMonarch;
  }
  bool smartdeal(const std::string& layer) const {
    return m_.encodings.at(layer).config.decompose == Decomposition::kSmartDeal;
  }
  // A SmartDeal layer's weight is composed from its factors by a node of its own, written before the graph's
  // ops; the ops that read the weight read that node's output, as the traced graph reads the weight.
  void compose_smartdeal_weights(ordered_json& nodes) {
    for (const auto& l : m_.table.layers) {
      if (!m_.encodings.count(l.name) || !smartdeal(l.name)) continue;
      const Encoding& e = m_.encodings.at(l.name);
      const std::string out = "s" + std::to_string(smartdeal_.size());
      smartdeal_[l.name] = out;
      nodes.push_back({{"op", kSmartDealOp},
                       {"layer", l.name},
                       {"in", ordered_json::array({{{"c", e.shape}}, {{"c", e.order}}, {{"c", e.config.basis}}})},
                       {"out", ordered_json::array({out})}});
    }
  }
  // A value name for a node the traced graph does not have (a decomposed layer's first factor's output).
  std::string fresh() { return "f" + std::to_string(fresh_++); }
  // in[0] @ Wᵀ (+ in[1]): one packed matmul, or for a lowrank layer its first factor (queued in pending_) and
  // then its second, which gives the layer's output.
  ordered_json matmul_node(const std::string& layer, ordered_json in) {
    if (monarch(layer)) {  // one op through both factors: (x, bias)
      if (in.size() == 1) in.push_back({{"c", nullptr}});
      return {{"op", kMonarchOp}, {"layer", layer}, {"in", std::move(in)}};
    }
    if (!lowrank(layer)) return {{"op", "adze::packed_matmul"}, {"layer", layer}, {"in", std::move(in)}};
    const std::string mid = fresh();
    pending_.push_back({{"op", "adze::packed_matmul"},
                        {"layer", layer + kFirstFactor},
                        {"in", ordered_json::array({in[0]})},
                        {"out", ordered_json::array({mid})}});
    in[0] = {{"v", mid}};
    return {{"op", "adze::packed_matmul"}, {"layer", layer + kSecondFactor}, {"in", std::move(in)}};
  }
  // A lowrank convolution: the kh×kw convolution to r channels (queued), then the 1×1 one with the bias.
  ordered_json lowrank_convolution(const Node* n, const std::string& layer) {
    const auto* schema = n->maybeSchema();
    ordered_json in = ordered_json::array();
    for (const Value* v : n->inputs()) in.push_back(ref(v));
    ordered_json first_in = in;
    first_in[1] = {{"w", layer + kFirstFactor}};
    first_in[2] = {{"c", nullptr}};
    const std::string mid = fresh();
    pending_.push_back({{"op", schema->name()},
                        {"overload", schema->overload_name()},
                        {"in", std::move(first_in)},
                        {"out", ordered_json::array({mid})}});
    const std::size_t spatial = in[3]["c"].size();
    in[0] = {{"v", mid}};
    in[1] = {{"w", layer + kSecondFactor}};
    in[3] = {{"c", std::vector<int64_t>(spatial, 1)}};  // stride
    in[4] = {{"c", std::vector<int64_t>(spatial, 0)}};  // padding
    in[5] = {{"c", std::vector<int64_t>(spatial, 1)}};  // dilation
    return {{"op", schema->name()}, {"overload", schema->overload_name()}, {"in", std::move(in)}};
  }
  // A Monarch 1x1 convolution (x, bias, stride): its pixels through the layer. Padding, dilation other than 1
  // and groups have no place in it.
  ordered_json monarch_convolution(const Node* n, const std::string& layer) {
    // A constant argument (an int list is a ListConstruct of constants in a traced graph).
    const auto arg = [&](std::size_t i) -> c10::optional<c10::IValue> {
      const Value* v = n->input(i);
      if (v->node()->kind() != c10::prim::ListConstruct) return torch::jit::toIValue(v);
      std::vector<int64_t> ints;
      for (const Value* e : v->node()->inputs()) {
        const auto iv = torch::jit::toIValue(e);
        if (!iv || !iv->isInt()) return c10::nullopt;
        ints.push_back(iv->toInt());
      }
      return c10::IValue(ints);
    };
    const auto padding = arg(4), dilation = arg(5), transposed = arg(6), groups = arg(8), stride = arg(3);
    const auto all = [](const c10::optional<c10::IValue>& v, int64_t x) {
      if (!v || !v->isIntList()) return false;
      for (int64_t i : v->toIntVector())
        if (i != x) return false;
      return true;
    };
    if (!all(padding, 0) || !all(dilation, 1) || !transposed || !transposed->isBool() || transposed->toBool() ||
        !groups || !groups->isInt() || groups->toInt() != 1 || !stride || !stride->isIntList() ||
        stride->toIntVector().size() != 2)
      throw Error(ErrorKind::kUnsupported, "packed: layer '" + layer +
                                               "' is a Monarch convolution with padding, dilation, groups or a "
                                               "transposed kernel, which the packed format runs as none");
    ordered_json in = ordered_json::array({ref(n->input(0))});
    in.push_back(n->input(2)->type()->kind() == c10::TypeKind::NoneType ? ordered_json{{"c", nullptr}}
                                                                        : ref(n->input(2)));
    in.push_back({{"c", stride->toIntVector()}});
    return {{"op", kMonarchOp}, {"layer", layer}, {"in", std::move(in)}};
  }
  ordered_json packed_op(const Node* n) {
    if (is_matmul(n) && n->input(0)->type()->cast<c10::TensorType>())
      if (const std::string* l = transposed_weight(n->input(1)))
        return matmul_node(*l, ordered_json::array({ref(n->input(0))}));
    if (n->kind() == c10::aten::linear)
      if (const std::string* l = layer_of(n->input(1)); l && order_of(*l) == std::vector<int64_t>{0, 1}) {
        ordered_json in = ordered_json::array({ref(n->input(0))});
        if (n->input(2)->type()->kind() != c10::TypeKind::NoneType) in.push_back(ref(n->input(2)));
        return matmul_node(*l, std::move(in));
      }
    if (n->kind() == c10::aten::_convolution)
      if (const std::string* l = layer_of(n->input(1)); l && (lowrank(*l) || monarch(*l)))
        return lowrank(*l) ? lowrank_convolution(n, *l) : monarch_convolution(n, *l);
    if (n->kind() == c10::aten::embedding)
      if (const std::string* l = layer_of(n->input(0)); l && order_of(*l) == std::vector<int64_t>{0, 1})
        return {{"op", "adze::packed_embedding"}, {"layer", *l}, {"in", ordered_json::array({ref(n->input(1))})}};
    return {};
  }

  bool constant_list(const Value* v) const {
    for (const Value* i : v->node()->inputs())
      if (i->node()->kind() != c10::prim::Constant || i->type()->cast<c10::TensorType>()) return false;
    return true;
  }

  static ordered_json number(double x) {
    if (std::isfinite(x)) return {{"c", x}};
    return {{"c", std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf"}, {"kind", "float"}};
  }

  // A batch-generic file's fit of a batch-dependent int or int list: [[a, b], ...], one pair per int.
  static ordered_json fit_of(const std::vector<BatchAffine>& fit) {
    ordered_json pairs = ordered_json::array();
    for (const BatchAffine& f : fit) pairs.push_back({f.a, f.b});
    return pairs;
  }

  ordered_json constant(const c10::IValue& iv, const Value* v) {
    if ((iv.isInt() || iv.isIntList()) && dynamic_batch_)
      if (const std::vector<BatchAffine> fit = batch_affine_of(v->node()); !fit.empty()) {
        const std::size_t ints = iv.isInt() ? 1 : iv.toIntVector().size();
        if (fit.size() != ints)
          throw Error(ErrorKind::kInternal, "packed: the batch fit of %" + v->debugName() + " has " +
                                                std::to_string(fit.size()) + " ints, its value " +
                                                std::to_string(ints));
        ordered_json out = iv.isInt() ? ordered_json{{"c", iv.toInt()}} : ordered_json{{"c", iv.toIntVector()}};
        out["batch"] = fit_of(fit);
        return out;
      }
    if (iv.isNone()) return {{"c", nullptr}};
    if (iv.isBool()) return {{"c", iv.toBool()}};
    if (iv.isInt()) return {{"c", iv.toInt()}};
    if (iv.isDouble()) return number(iv.toDouble());
    if (iv.isString()) return {{"c", iv.toStringRef()}};
    if (iv.isDevice()) return {{"c", iv.toDevice().str()}, {"kind", "device"}};
    if (iv.isIntList()) return {{"c", iv.toIntVector()}};
    if (iv.isBoolList()) {
      std::vector<bool> b;
      for (bool x : iv.toBoolList()) b.push_back(x);
      return {{"c", b}, {"kind", "bool[]"}};
    }
    if (iv.isDoubleList()) {
      ordered_json list = ordered_json::array();
      for (double x : iv.toDoubleVector()) list.push_back(number(x)["c"]);
      return {{"c", list}, {"kind", "float[]"}};
    }
    if (iv.isTensor()) {
      const at::Tensor t = iv.toTensor().contiguous();
      const std::string dtype = t.scalar_type() == at::kFloat  ? "F32"
                                : t.scalar_type() == at::kLong ? "I64"
                                : t.scalar_type() == at::kBool ? "BOOL"
                                                               : "";
      if (dtype.empty())
        throw Error(ErrorKind::kUnsupported,
                    "packed: a constant tensor of type " + std::string(c10::toString(t.scalar_type())));
      const std::string name = "const:" + std::to_string(tensors_.size());
      tensors_.push_back({name, dtype, t.sizes().vec(),
                          std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size())});
      return {{"t", name}};
    }
    throw Error(ErrorKind::kUnsupported,
                "packed: a constant of type " + iv.tagKind() + " (in " + v->node()->kind().toQualString() + ")");
  }

  ordered_json ref(const Value* v) {
    if (auto it = names_.find(v); it != names_.end()) return {{"v", it->second}};
    if (const std::string* s = smartdeal_weight(v)) return {{"v", *s}};
    if (const std::string* l = layer_of(v)) return {{"w", *l}};
    if (const NamedTensor* t = m_.model.tensor_of(v)) {
      add_tensor(*t);
      return {{"t", t->name}};
    }
    const Node* p = v->node();
    if (p->kind() == c10::prim::ListConstruct) {
      ordered_json list = ordered_json::array(), fit = ordered_json::array();
      std::string kind;
      bool batch_dependent = false;
      for (const Value* i : p->inputs()) {
        ordered_json c = ref(i);
        if (c.contains("kind")) kind = c["kind"].get<std::string>() + "[]";
        batch_dependent |= c.contains("batch");
        // An int's pair: its fit, or [0, the int] where it does not depend on the batch.
        fit.push_back(c.contains("batch") ? c["batch"][0] : ordered_json::array({0, c["c"]}));
        list.push_back(c["c"]);
      }
      ordered_json out = {{"c", list}};
      if (batch_dependent) out["batch"] = std::move(fit);
      const auto element = v->type()->expect<c10::ListType>()->getElementType();
      if (element->kind() == c10::TypeKind::FloatType) kind = "float[]";
      if (element->kind() == c10::TypeKind::BoolType) kind = "bool[]";
      if (!kind.empty()) out["kind"] = kind;
      return out;
    }
    if (auto iv = torch::jit::toIValue(v)) return constant(*iv, v);
    throw Error(ErrorKind::kInternal, "packed: value %" + v->debugName() + " used before it is defined");
  }
  std::string name(const Value* v) {
    const ordered_json r = ref(v);
    if (!r.contains("v")) throw Error(ErrorKind::kUnsupported, "packed: the model's output is not computed by an op");
    return r["v"];
  }

  void add_tensor(const NamedTensor& t) {
    if (!added_.insert(t.name).second) return;
    const at::Tensor v = t.value.contiguous().cpu();
    std::string dtype;
    at::Tensor stored = v;
    if (v.is_floating_point()) {
      dtype = "F32";
      stored = v.to(torch::kFloat);
    } else if (v.scalar_type() == at::kLong) {
      dtype = "I64";
    } else if (v.scalar_type() == at::kInt) {
      dtype = "I32";
    } else if (v.scalar_type() == at::kBool) {
      dtype = "BOOL";
    } else {
      throw Error(ErrorKind::kUnsupported, "packed: tensor '" + t.name + "' of type " + c10::toString(v.scalar_type()));
    }
    tensors_.push_back(
        {t.name, dtype, stored.sizes().vec(),
         std::string(static_cast<const char*>(stored.data_ptr()), stored.numel() * stored.element_size())});
  }

  const CompressedModel& m_;
  bool dynamic_batch_;
  std::map<std::string, std::string> layer_of_weight_;
  std::map<const Value*, std::string> names_;
  std::vector<RawTensor> tensors_;
  std::set<std::string> added_;
  std::vector<ordered_json> pending_;  ///< nodes to write before the current one
  int fresh_ = 0;
  std::map<std::string, std::string> smartdeal_;  ///< SmartDeal layer -> the value of its composed weight
};

}  // namespace

void write_packed(const CompressedModel& m, const std::string& path, const WriteOptions& options) {
  if (options.dynamic_batch && !m.model.batch_dependence().generic)
    throw Error(ErrorKind::kUnsupported,
                "failed to export '" + m.dir + "' as packed with dynamic_batch: its graph holds at batch size " +
                    std::to_string(m.model.traced_batch()) + " only, because " + m.model.batch_dependence().why_not);
  std::vector<RawTensor> tensors;
  ordered_json layers = ordered_json::object();
  for (const auto& l : m.table.layers) {
    const auto e = m.encodings.find(l.name);
    if (e == m.encodings.end()) continue;
    // A decomposed layer is stored as its two factors, layers of their own (FORMAT.md, "Decomposed layers").
    std::vector<std::pair<std::string, const Encoding*>> parts = {{"", &e->second}};
    if (e->second.config.decomposed())
      parts = {{kFirstFactor, &e->second.factors[0]}, {kSecondFactor, &e->second.factors[1]}};
    for (const auto& [suffix, encoding] : parts) {
      PackedLayer p = pack_layer(l.weight + suffix, *encoding);
      layers[l.name + suffix] = std::move(p.header);
      for (auto& t : p.tensors) tensors.push_back(std::move(t));
    }
  }
  ordered_json header;
  header["format"] = kFormat;
  header["version"] = kFormatVersion;
  header["source"] = m.dir;
  header["input"] = {{"shape", m.model.input().shape}, {"dtype", m.model.input().dtype}};
  if (options.dynamic_batch) header["input"]["batch"] = "any";  // shape[0] stays the traced batch
  header["graph"] = GraphWriter(m, options.dynamic_batch).write(tensors);
  header["layers"] = std::move(layers);
  const std::string adze = header.dump();

  // The data section's checksum, over the tensors in the order write_safetensors lays them out.
  uint32_t crc = 0;
  for (const RawTensor* t : data_order(tensors))
    crc = crc32_of(t->bytes.data(), static_cast<int64_t>(t->bytes.size()), crc);
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"format_version", std::to_string(kFormatVersion)},
      {"adze", adze},
      {"adze_crc32", hex32(crc32_of(adze.data(), static_cast<int64_t>(adze.size())))},
      {"data_crc32", hex32(crc)},
  };
  write_safetensors(path, metadata, tensors);
}

}  // namespace packed
}  // namespace adze
