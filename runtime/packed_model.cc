// PackedModel: opening and checking a packed file, and the runtime that executes its graph.
#include "runtime/packed_model.h"

#include <omp.h>
#include <torch/csrc/jit/runtime/operator.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <set>

#include "compress/decompose.h"
#include "core/error.h"
#include "model/tapped_graph.h"
#include "runtime/buffer_pool.h"
#include "runtime/float_ops.h"
#include "runtime/fusion.h"
#include "runtime/graph.h"
#include "runtime/own_ops.h"
#include "runtime/packed_layer.h"
#include "runtime/packed_ops.h"
#include "runtime/parallel.h"
#include "runtime/safetensors.h"
#include "runtime/split_choice.h"

namespace adze {
namespace packed {
namespace {

// An ATen operator by name and overload, boxed; empty when this libtorch has none. Operators are looked up in
// the dispatcher's table, which libtorch's static initialization filled. Only the few that TorchScript's
// interpreter alone implements (aten::size, aten::Int, ...) are looked up in its registry: the first lookup there
// builds the schema string of every registered operator, 7 ms of a ResNet-18's cold start on a 2-core EPYC.
std::function<void(torch::jit::Stack&)> aten_operator(const c10::OperatorName& name) {
  if (const auto handle = c10::Dispatcher::singleton().findSchema(name))
    return [op = *handle](torch::jit::Stack& stack) { op.callBoxed(&stack); };
  if (const auto op = torch::jit::findOperatorFor(name))
    return [operation = op->getOperation()](torch::jit::Stack& stack) mutable { operation(stack); };
  return {};
}

c10::IValue float_of(const nlohmann::json& c) {
  if (c.is_number()) return c.get<double>();
  const std::string s = c.is_string() ? c.get<std::string>() : "";
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  throw Error(ErrorKind::kIo, "bad float constant " + c.dump());
}

c10::IValue constant_of(const nlohmann::json& ref) {
  const nlohmann::json& c = ref.at("c");
  const std::string kind = ref.value("kind", "");
  if (kind == "float") return float_of(c);
  if (kind == "device") return c10::Device(c.get<std::string>());
  if (kind == "float[]") {
    c10::List<double> list;
    for (const auto& x : c) list.push_back(float_of(x).toDouble());
    return list;
  }
  if (kind == "bool[]") {
    c10::List<bool> list;
    for (const auto& x : c) list.push_back(x.get<bool>());
    return list;
  }
  if (!kind.empty()) throw Error(ErrorKind::kIo, "unknown constant kind '" + kind + "'");
  if (c.is_null()) return c10::IValue();
  if (c.is_boolean()) return c.get<bool>();
  if (c.is_number_integer()) return c.get<int64_t>();
  if (c.is_number_float()) return c.get<double>();
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    c10::List<int64_t> list;
    for (const auto& x : c) list.push_back(x.get<int64_t>());
    return list;
  }
  throw Error(ErrorKind::kIo, "bad constant " + c.dump());
}

// Why a batch-generic file's fit of a constant (its "batch") is unsound, or "" when it is sound, reading it into
// `out`: one [a, b] pair of integers per int of the constant (an int or a list of ints), each giving the stored
// int at the traced batch.
std::string read_batch_fit(const nlohmann::json& fit, const c10::IValue& value, int64_t traced,
                           std::vector<BatchAffine>* out) {
  if (!value.isInt() && !value.isIntList()) return "fit on a constant that is not an int or a list of ints";
  const std::vector<int64_t> ints = value.isInt() ? std::vector<int64_t>{value.toInt()} : value.toIntVector();
  if (!fit.is_array() || fit.size() != ints.size())
    return "fit " + fit.dump().substr(0, 80) + ": expected " + std::to_string(ints.size()) +
           " [a, b] pair(s), one per int of the constant";
  constexpr int64_t kLimit = int64_t{1} << 40;  // far beyond any shape; a*n + b cannot overflow at open
  for (std::size_t i = 0; i < ints.size(); ++i) {
    const nlohmann::json& pair = fit[i];
    auto whole = [](const nlohmann::json& x) {
      return x.is_number_integer() &&
             (x.is_number_unsigned() ? x.get<uint64_t>() < uint64_t{kLimit} : std::llabs(x.get<int64_t>()) < kLimit);
    };
    if (!pair.is_array() || pair.size() != 2 || !whole(pair[0]) || !whole(pair[1]))
      return "fit pair " + std::to_string(i) + " is " + pair.dump().substr(0, 80) +
             ": expected [a, b], two integers of magnitude below 2^40";
    const BatchAffine f{pair[0].get<int64_t>(), pair[1].get<int64_t>()};
    if (f.at(traced) != ints[i])
      return "fit pair " + std::to_string(i) + " " + pair.dump() + " gives " + std::to_string(f.at(traced)) +
             " at the traced batch " + std::to_string(traced) + ", the constant holds " + std::to_string(ints[i]);
    out->push_back(f);
  }
  return "";
}

// A batch-dependent int at batch size n: std::overflow_error where a*n + b does not fit in 64 bits.
int64_t fit_at(const BatchAffine& f, int64_t n) {
  int64_t r = 0;
  if (__builtin_mul_overflow(f.a, n, &r) || __builtin_add_overflow(r, f.b, &r))
    throw std::overflow_error("a batch-dependent int (" + std::to_string(f.a) + "*n + " + std::to_string(f.b) +
                              ") overflows");
  return r;
}

at::ScalarType scalar_type_of(const std::string& dtype) {
  if (dtype == "F32") return at::kFloat;
  if (dtype == "I64") return at::kLong;
  if (dtype == "I32") return at::kInt;
  if (dtype == "BOOL") return at::kBool;
  throw Error(ErrorKind::kIo, "a graph tensor of dtype " + dtype);
}

}  // namespace

// The graph as run: its nodes in order, each value in a slot, and the slots each node is the last to read
// (emptied after it, so that a value's memory goes back as soon as nothing needs it).
struct Program {
  std::vector<Node> nodes;
  std::vector<std::vector<int>> release;
  std::vector<bool> on_team;  ///< per node: may run on a standing team's leader (runs_on_team)
  int slots = 0;
  int output_slot = 0;
  mutable runtime::SplitChoice split;  ///< which ops run split over the threads, chosen from the first runs
};

// The graph as made for one batch size: every op resolved and constants folded (what a run recording layer
// outputs runs), and the same fused (fusion.h: what a plain run runs).
struct Schedule {
  Program graph, fused;
};

// A batch-generic file's schedules by batch size (besides the traced one); past kMaxBatchSizes, the least
// recently used is dropped. Runs that hold a schedule keep it alive.
struct ScheduleCache {
  static constexpr std::size_t kMaxBatchSizes = 16;
  std::mutex mutex;
  std::map<int64_t, std::pair<std::shared_ptr<const Schedule>, uint64_t>> by_batch;  ///< with its last use
  uint64_t uses = 0;
};

namespace {

bool is_convolution(const std::string& op) { return op == "aten::_convolution" || op == "aten::conv2d"; }

// The tensor an argument holds at open: a file tensor, or a weight decoded at open; else null.
const at::Tensor* constant_tensor_of(const Arg& a, const std::map<std::string, at::Tensor>& tensors,
                                     const std::map<std::string, at::Tensor>& decoded) {
  if (a.kind == Arg::kTensor) return &tensors.at(a.name);
  if (a.kind == Arg::kWeight) {
    const auto d = decoded.find(a.name);
    return d == decoded.end() ? nullptr : &d->second;
  }
  return nullptr;
}

// Why a convolution node cannot run on the integer kernels ("" when it can), reading its constant arguments
// into node.stride, padding and dilation. aten::_convolution(input, weight, bias, stride, padding, dilation,
// transposed, output_padding, groups, ...), aten::conv2d(input, weight, bias, stride, padding, dilation, groups).
std::string convolution_unsupported(Node& node, const LayerView& layer) {
  const bool full = node.op == "aten::_convolution";
  const std::size_t groups_at = full ? 8 : 6;
  if (node.in.size() <= groups_at) return "a convolution call of an unexpected form";
  auto ints = [&](std::size_t i, std::vector<int64_t>* out) {
    const Arg& a = node.in[i];
    if (a.kind != Arg::kConstant || !a.constant.isIntList()) return false;
    *out = a.constant.toIntVector();
    return out->size() == 2;
  };
  if (layer.layout().shape.size() != 4) return "not a 2-D convolution";
  if (!ints(3, &node.stride) || !ints(4, &node.padding) || !ints(5, &node.dilation))
    return "a convolution whose stride, padding or dilation is computed";
  if (full && !(node.in[6].kind == Arg::kConstant && node.in[6].constant.isBool() && !node.in[6].constant.toBool()))
    return "a transposed convolution";
  const Arg& groups = node.in[groups_at];
  if (!(groups.kind == Arg::kConstant && groups.constant.isInt() && groups.constant.toInt() == 1))
    return "a grouped or depthwise convolution";
  return "";
}

}  // namespace

PackedModel::PackedModel(PackedModel&&) noexcept = default;
PackedModel& PackedModel::operator=(PackedModel&&) noexcept = default;
PackedModel::~PackedModel() = default;

int64_t PackedModel::file_bytes() const { return file_->file_bytes(); }

PackedModel PackedModel::open(const std::string& path, const RunOptions& options) {
  PackedModel m;
  m.graph_ = std::make_unique<Program>();
  m.file_ = SafetensorsFile::open(path);
  const std::string where = "packed file '" + path + "'";
  auto bad = [&](const std::string& what) { return Error(ErrorKind::kIo, where + ": " + what); };
  const auto& meta = m.file_->metadata();
  auto field = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) throw bad(std::string("not an adze packed file (no '") + key + "' in __metadata__)");
    return it->second;
  };
  if (field("format") != kFormat) throw bad("format '" + field("format") + "' is not " + kFormat);
  const std::string& version = field("format_version");
  if (version != std::to_string(kFormatVersion) && version != std::to_string(kOldestFormatVersion))
    throw bad("format version " + version + " (this adze reads versions " + std::to_string(kOldestFormatVersion) +
              " to " + std::to_string(kFormatVersion) + ": a newer adze wrote it)");
  const std::string& adze = field("adze");
  if (hex32(crc32_of(adze.data(), static_cast<int64_t>(adze.size()))) != field("adze_crc32"))
    throw bad("corrupted: the model description fails its checksum");
  if (hex32(crc32_of(m.file_->data(), m.file_->data_bytes())) != field("data_crc32"))
    throw bad("corrupted: the tensor data fails its checksum");
  try {
    m.header_ = nlohmann::json::parse(adze);
    if (m.header_.at("format") != kFormat || std::to_string(m.header_.at("version").get<int>()) != version)
      throw bad("format fields disagree");
    m.input_.shape = m.header_.at("input").at("shape").get<std::vector<int64_t>>();
    m.input_.dtype = m.header_.at("input").at("dtype").get<std::string>();
    parse_dtype(m.input_.dtype);
    if (m.input_.shape.empty() || m.input_.shape[0] < 1) throw bad("the input shape has no batch");
    const int64_t traced = m.input_.shape[0];
    if (const auto& input = m.header_.at("input"); input.contains("batch")) {
      if (input["batch"] != "any")
        throw bad("input.batch is " + input["batch"].dump().substr(0, 80) +
                  ": expected \"any\" (a batch-generic file)");
      m.batch_generic_ = true;
    }
    for (const auto& [name, entry] : m.header_.at("layers").items()) {
      m.layers_[name] = std::make_unique<LayerView>(entry, m.file_->tensors(), where + " layer '" + name + "'");
      for (const auto& part : entry.at("tensors"))
        m.weight_bytes_ += m.file_->tensors().at(part.get<std::string>()).bytes;
    }

    std::set<std::string> defined = {"input"};
    std::map<std::string, std::string> composed;  // value -> the SmartDeal layer whose weight it is
    const auto& graph = m.header_.at("graph");
    for (const auto& n : graph.at("nodes")) {
      Node node;
      node.op = n.at("op").get<std::string>();
      node.layer = n.value("layer", "");
      node.type = n.value("type", "");
      const std::string at_node = "op '" + node.op + "' (node " + std::to_string(m.graph_->nodes.size()) + ")";
      for (const auto& r : n.at("in")) {
        Arg a;
        const std::string at_arg = at_node + " argument " + std::to_string(node.in.size());
        if (r.contains("batch") && !r.contains("c")) throw bad(at_arg + " has a batch fit but is not a constant");
        if (r.contains("v")) {
          a.kind = Arg::kValue;
          a.name = r["v"].get<std::string>();
          if (!defined.count(a.name)) throw bad(at_node + " reads '" + a.name + "' before it is defined");
          if (const auto c = composed.find(a.name); c != composed.end()) {  // a SmartDeal layer's weight
            a.kind = Arg::kWeight;
            a.name = c->second;
          }
        } else if (r.contains("t")) {
          a.kind = Arg::kTensor;
          a.name = r["t"].get<std::string>();
          const auto t = m.file_->tensors().find(a.name);
          if (t == m.file_->tensors().end()) throw bad(at_node + " reads tensor '" + a.name + "', which is missing");
          if (!m.tensors_.count(a.name))
            m.tensors_[a.name] = torch::from_blob(const_cast<uint8_t*>(t->second.data), t->second.shape,
                                                  torch::TensorOptions().dtype(scalar_type_of(t->second.dtype)));
          // The mapping is read-only: an in-place op (add_) that writes a file tensor gets a copy of its own.
          if (node.in.empty() && !node.op.empty() && node.op.back() == '_')
            m.tensors_[a.name] = m.tensors_[a.name].clone();
        } else if (r.contains("w")) {
          a.kind = Arg::kWeight;
          a.name = r["w"].get<std::string>();
          if (!m.layers_.count(a.name)) throw bad(at_node + " reads layer '" + a.name + "', which is missing");
        } else {
          a.constant = constant_of(r);
          if (r.contains("batch")) {
            if (!m.batch_generic_) throw bad(at_arg + " has a batch fit, but input.batch is not \"any\"");
            const std::string why = read_batch_fit(r["batch"], a.constant, traced, &a.batch);
            if (!why.empty()) throw bad(at_arg + ": batch " + why);
          }
        }
        node.in.push_back(std::move(a));
      }
      for (const auto& o : n.at("out")) {
        node.out.push_back(o.get<std::string>());
        defined.insert(node.out.back());
      }
      if (node.op == kSmartDealOp) {  // composed here, once; the ops that read it read the weight
        if (node.out.size() != 1) throw bad(at_node + " has the wrong number of outputs");
        const std::string why = m.compose_smartdeal(node);
        if (!why.empty()) throw bad(at_node + " " + why);
        composed[node.out[0]] = node.layer;
        continue;
      }
      if (node.op == "adze::packed_matmul" || node.op == "adze::packed_embedding") {
        if (!m.layers_.count(node.layer)) throw bad(at_node + " names layer '" + node.layer + "', which is missing");
        if (node.in.empty() || node.out.size() != 1) throw bad(at_node + " has the wrong number of inputs or outputs");
      } else if (node.op == kMonarchOp) {  // (x, bias) for a linear layer, (x, bias, stride) for a 1x1 convolution
        for (const char* factor : {kFirstFactor, kSecondFactor})
          if (!m.layers_.count(node.layer + factor))
            throw bad(at_node + " names layer '" + node.layer + factor + "', which is missing");
        if (node.in.size() < 2 || node.in.size() > 3 || node.out.size() != 1)
          throw bad(at_node + " has the wrong number of inputs or outputs");
        if (node.in[1].kind != Arg::kTensor && !(node.in[1].kind == Arg::kConstant && node.in[1].constant.isNone()))
          throw bad(at_node + " has a bias that is neither a file tensor nor null");
        if (node.in.size() == 3 &&
            !(node.in[2].kind == Arg::kConstant && node.in[2].constant.isIntList() &&
              node.in[2].constant.toIntVector().size() == 2 && node.in[2].constant.toIntVector()[0] >= 1 &&
              node.in[2].constant.toIntVector()[1] >= 1))
          throw bad(at_node + " has a stride that is not two positive ints");
      } else if (node.op == "prim::ListConstruct" || node.op == "prim::ListUnpack") {
        if (node.in.empty() && node.op == "prim::ListUnpack") throw bad(at_node + " has no input");
      } else {
        node.operation = aten_operator(c10::OperatorName(node.op, n.value("overload", "")));
        if (!node.operation) throw bad(at_node + " is not an operator this libtorch knows");
      }
      m.graph_->nodes.push_back(std::move(node));
    }
    m.output_ = graph.at("output").get<std::string>();
    if (!defined.count(m.output_)) throw bad("the output '" + m.output_ + "' is computed by no op");
    m.mark_layer_outputs();
    m.options_ = options;
    m.plan_integer_layers();
    for (Node& node : m.graph_->nodes)
      for (Arg& a : node.in) a.tensor = constant_tensor_of(a, m.tensors_, m.decoded_);
    m.traced_ = m.make_schedule(traced);
    m.pool_ = runtime::BufferPool::make();
    if (m.batch_generic_) m.schedules_ = std::make_unique<ScheduleCache>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw bad(std::string("malformed model description (") + first_line_of(e) + ")");
  }
  return m;
}

std::map<std::string, Encoding> PackedModel::encodings() const {
  std::map<std::string, Encoding> out;
  for (const auto& [name, view] : layers_) out.emplace(name, view->encoding());
  return out;
}

// The rule of model/tapped_graph.h: an op that reads a layer's weight (directly, or a value computed from the
// weight alone) together with a value computed from the input computes that layer's output.
void PackedModel::mark_layer_outputs() {
  std::set<std::string> from_input = {"input"};
  std::map<std::string, std::string> weight_only;
  for (Node& node : graph_->nodes) {
    bool reads_input = false;
    std::string layer = node.layer;
    for (const Arg& a : node.in) {
      if (a.kind == Arg::kWeight) layer = a.name;
      if (a.kind != Arg::kValue) continue;
      reads_input |= from_input.count(a.name) > 0;
      if (auto it = weight_only.find(a.name); it != weight_only.end()) layer = it->second;
    }
    // A lowrank layer's second factor computes the layer's output (its first, an output of its own).
    const std::string second = kSecondFactor;
    if (layer.size() > second.size() && layer.compare(layer.size() - second.size(), second.size(), second) == 0)
      layer.resize(layer.size() - second.size());
    if (reads_input) {
      from_input.insert(node.out.begin(), node.out.end());
      if (node.out.size() == 1) node.output_of = layer;
    } else if (!layer.empty()) {
      for (const auto& o : node.out) weight_only[o] = layer;
    }
  }
}

std::string PackedModel::compose_smartdeal(const Node& node) {
  const auto first = layers_.find(node.layer + kFirstFactor), second = layers_.find(node.layer + kSecondFactor);
  if (first == layers_.end() || second == layers_.end())
    return "names layer '" + node.layer + "', whose two factors are not both stored";
  const auto ints = [&](std::size_t i) {
    return node.in.size() == 3 && node.in[i].kind == Arg::kConstant && node.in[i].constant.isIntList();
  };
  if (!ints(0) || !ints(1) || node.in[2].kind != Arg::kConstant || !node.in[2].constant.isInt())
    return "takes a shape and an order (int lists) and a basis size (an int)";
  Encoding e;
  e.shape = node.in[0].constant.toIntVector();
  e.order = node.in[1].constant.toIntVector();
  e.config.decompose = Decomposition::kSmartDeal;
  e.config.basis = node.in[2].constant.toInt();
  const LayerView &f = *first->second, &s = *second->second;
  const int64_t C = f.channels(), K = f.reduction(), b = e.config.basis;
  std::vector<int64_t> sorted = e.order;
  std::sort(sorted.begin(), sorted.end());
  bool fits = !e.shape.empty() && sorted.size() == e.shape.size() && b >= 1 && K % b == 0 && s.channels() == C &&
              s.reduction() == b * b;
  int64_t elements = 1;
  for (std::size_t d = 0; fits && d < e.shape.size(); ++d) {
    fits = sorted[d] == static_cast<int64_t>(d) && e.shape[d] >= 1 && e.shape[d] <= C * K / elements;
    elements *= fits ? e.shape[d] : 1;
  }
  if (!fits || elements != C * K || e.shape[static_cast<std::size_t>(e.order[0])] != C)
    return "has a shape " + c10::str(c10::IntArrayRef(e.shape)) + ", order or basis " + std::to_string(b) +
           " that its factors (coefficients [" + std::to_string(C) + ", " + std::to_string(K) + "], basis [" +
           std::to_string(s.channels()) + ", " + std::to_string(s.reduction()) + "]) do not fit";
  e.factors = {f.layout(), s.layout()};
  decoded_[node.layer] = compose_weight(e, decoded_weight(f), decoded_weight(s));
  return "";
}

// Which packed matmuls run on the integer kernels, and with which activation quantizer.
void PackedModel::plan_integer_layers() {
  std::map<std::string, std::size_t> producer;  // value -> the node that computes it
  std::map<std::string, int> readers;           // value -> how many arguments read it
  for (std::size_t i = 0; i < graph_->nodes.size(); ++i) {
    for (const Arg& a : graph_->nodes[i].in)
      if (a.kind == Arg::kValue) ++readers[a.name];
    for (const auto& o : graph_->nodes[i].out) producer[o] = i;
  }
  ++readers[output_];
  auto file_tensor = [&](const Arg& a) -> const at::Tensor* {
    return a.kind == Arg::kTensor ? &tensors_.at(a.name) : nullptr;
  };
  for (Node& node : graph_->nodes) {
    if (is_convolution(node.op) && node.in.size() > 1 && node.in[1].kind == Arg::kWeight) node.layer = node.in[1].name;
    if (const auto s = std::find_if(node.in.begin(), node.in.end(),
                                    [&](const Arg& a) { return a.kind == Arg::kWeight && !layers_.count(a.name); });
        s != node.in.end()) {
      node.float_reason = "a SmartDeal layer: its factors composed to an fp32 weight at open";
      continue;
    }
    if (node.op == kMonarchOp) {  // dynamic activations through both factors, or fp32
      const LayerView &first = *layers_.at(node.layer + kFirstFactor),
                      &second = *layers_.at(node.layer + kSecondFactor);
      node.float_reason = !options_.integer_kernels               ? "integer kernels switched off"
                          : !first.integer_unsupported().empty()  ? first.integer_unsupported()
                          : !second.integer_unsupported().empty() ? second.integer_unsupported()
                          : !first.gather().empty() || !second.gather().empty()
                              ? "a Monarch factor with a channel permutation"
                          : !options_.dynamic_activations ? "dynamic activations switched off"
                                                          : "";
      node.integer = node.float_reason.empty();
      continue;
    }
    const bool candidate = node.op == "adze::packed_matmul" || is_convolution(node.op);
    if (!candidate || node.layer.empty()) {
      for (const Arg& a : node.in)
        if (a.kind == Arg::kWeight) node.float_reason = "read by " + node.op + " as a decoded fp32 weight";
      continue;
    }
    const LayerView& layer = *layers_.at(node.layer);
    node.float_reason = !options_.integer_kernels              ? "integer kernels switched off"
                        : !layer.integer_unsupported().empty() ? layer.integer_unsupported()
                        : is_convolution(node.op)              ? convolution_unsupported(node, layer)
                                                               : "";
    if (!node.float_reason.empty()) continue;
    if (node.in[0].kind == Arg::kValue) {
      const auto it = producer.find(node.in[0].name);
      if (it != producer.end() && graph_->nodes[it->second].in[0].kind == Arg::kValue) {
        Node& fq = graph_->nodes[it->second];
        if (const auto act = calibrated_quantizer(fq, file_tensor)) {
          node.integer = true;
          node.act = act;
          node.act_input = fq.in[0].name;
          fq.skip = readers[fq.out[0]] == 1 && fq.out.size() == 1;
          continue;
        }
      }
    }
    node.integer = options_.dynamic_activations;
    if (!node.integer) node.float_reason = "weight-only, and dynamic activations switched off";
  }
  // What the remaining nodes read as whole fp32 weights is decoded once, here.
  for (const Node& node : graph_->nodes)
    if (!node.integer)
      for (const Arg& a : node.in)
        if (a.kind == Arg::kWeight && !decoded_.count(a.name)) decoded_[a.name] = decoded_weight(*layers_.at(a.name));
}

namespace {

// Node::passes_range: where every reader of an integer convolution's or a max pool's output is an integer
// convolution (none changes its input or residual in place, so the range stays true until the last of them
// ran), and one reads it as its dynamically quantized input.
void mark_passed_ranges(Program& p) {
  const auto integer_conv = [](const Node& n) { return n.integer && is_convolution(n.op) && !n.skip; };
  std::vector<int> readers(static_cast<std::size_t>(p.slots), 0), fit(static_cast<std::size_t>(p.slots), 0);
  std::vector<char> wanted(static_cast<std::size_t>(p.slots), 0);
  for (const Node& node : p.nodes) {
    if (node.skip) continue;
    const auto read = [&](int slot, bool fits) {
      ++readers[static_cast<std::size_t>(slot)];
      fit[static_cast<std::size_t>(slot)] += fits && integer_conv(node);
    };
    for (std::size_t i = 0; i < node.in.size(); ++i)
      if (node.in[i].kind == Arg::kValue) read(node.in[i].slot, i == 0);
    if (node.act) read(node.act_slot, true);
    if (node.residual) read(node.residual->slot, true);
    if (integer_conv(node) && !node.act && !node.in.empty() && node.in[0].kind == Arg::kValue)
      wanted[static_cast<std::size_t>(node.in[0].slot)] = 1;
  }
  for (Node& node : p.nodes) {
    if (!(integer_conv(node) || (node.own == OwnOp::kMaxPool2d && !node.skip)) || node.out_slots.empty()) continue;
    const auto o = static_cast<std::size_t>(node.out_slots[0]);
    node.passes_range = static_cast<int>(o) != p.output_slot && wanted[o] && readers[o] == fit[o];
  }
}

// ATen ops that only reshape, pick or describe their input: cheap enough to run on a standing team's leader.
const std::set<std::string>& aten_shape_ops() {
  static const std::set<std::string> ops = {"aten::flatten",   "aten::view",      "aten::reshape", "aten::permute",
                                            "aten::transpose", "aten::t",         "aten::select",  "aten::slice",
                                            "aten::squeeze",   "aten::unsqueeze", "aten::size",    "aten::dim",
                                            "aten::numel",     "aten::Int",       "aten::expand",  "aten::chunk",
                                            "aten::split",     "aten::unbind",    "aten::detach",  "aten::dropout"};
  return ops;
}

// Whether a node runs on a standing team's leader: the runtime's own kernels, prim ops and ATen's shape ops. Any
// other ATen op (a float convolution, a matmul) would find itself inside an OpenMP region there and run on one
// thread.
bool runs_on_team(const Node& node) {
  return node.skip || node.integer || node.own != OwnOp::kNone || node.op.rfind("adze::", 0) == 0 ||
         node.op.rfind("prim::", 0) == 0 || aten_shape_ops().count(node.op) > 0;
}

// Slots for every value (the input's is 0), each argument's slot or held tensor, and when each slot empties, and
// which nodes may run on a standing team.
void resolve(Program& p, const std::string& output) {
  std::map<std::string, int> slot = {{"input", 0}};
  for (Node& node : p.nodes) {
    for (Arg& a : node.in) {
      // A skipped op's input may be defined nowhere now (fused into the op before it).
      if (a.kind == Arg::kValue && !node.skip) a.slot = slot.at(a.name);
      if ((a.kind == Arg::kTensor || a.kind == Arg::kWeight) && a.tensor) a.constant = *a.tensor;
    }
    if (node.act) node.act_slot = slot.at(node.act_input);
    if (node.residual) node.residual->slot = slot.at(node.residual->name);
    node.out_slots.clear();
    for (const auto& o : node.out)
      node.out_slots.push_back(slot.emplace(o, static_cast<int>(slot.size())).first->second);
  }
  p.slots = static_cast<int>(slot.size());
  p.output_slot = slot.at(output);
  std::vector<int> last(static_cast<std::size_t>(p.slots), -1);
  for (std::size_t i = 0; i < p.nodes.size(); ++i) {
    const Node& node = p.nodes[i];
    if (node.skip) continue;
    for (const Arg& a : node.in)
      if (a.kind == Arg::kValue) last[static_cast<std::size_t>(a.slot)] = static_cast<int>(i);
    if (node.act) last[static_cast<std::size_t>(node.act_slot)] = static_cast<int>(i);
    if (node.residual) last[static_cast<std::size_t>(node.residual->slot)] = static_cast<int>(i);
  }
  last[static_cast<std::size_t>(p.output_slot)] = -1;  // the result stays
  p.release.assign(p.nodes.size(), {});
  for (int v = 0; v < p.slots; ++v)
    if (last[static_cast<std::size_t>(v)] >= 0)
      p.release[static_cast<std::size_t>(last[static_cast<std::size_t>(v)])].push_back(v);
  p.on_team.assign(p.nodes.size(), false);
  for (std::size_t i = 0; i < p.nodes.size(); ++i) p.on_team[i] = runs_on_team(p.nodes[i]);
  mark_passed_ranges(p);
}

// Whether an ATen op gives the same result every time from the same arguments and changes none of them.
bool pure(const Node& node) {
  const std::string& op = node.op;
  if (!node.operation || node.integer || op.back() == '_') return false;
  for (const char* word : {"rand", "normal", "bernoulli", "dropout", "empty", "uniform", "multinomial"})
    if (op.find(word) != std::string::npos) return false;
  return true;
}

// Runs once, at open, every pure op whose arguments are all known then (file tensors, constants, the results of
// such ops: a slice of a causal mask, of a position embedding), and makes its results constants of the ops that
// read them. Results are copied out of the read-only mapping.
void fold_constants(Program& p, const std::string& output) {
  std::map<std::string, c10::IValue> known;
  for (Node& node : p.nodes) {
    if (node.skip || !pure(node) || std::count(node.out.begin(), node.out.end(), output)) continue;
    bool constant = true;
    for (const Arg& a : node.in)
      constant &= a.kind == Arg::kConstant || (a.kind == Arg::kValue ? known.count(a.name) > 0 : a.tensor != nullptr);
    if (!constant) continue;
    torch::jit::Stack stack;
    for (const Arg& a : node.in)
      stack.push_back(a.kind == Arg::kValue ? known.at(a.name) : a.kind == Arg::kConstant ? a.constant : *a.tensor);
    try {
      node.operation(stack);
    } catch (const c10::Error& e) {  // a graph no input can run: say which op, at open
      throw std::runtime_error("op '" + node.op + "' fails on its constant arguments: " + e.what_without_backtrace());
    }
    if (stack.size() != node.out.size()) continue;
    for (std::size_t i = 0; i < stack.size(); ++i)
      known[node.out[i]] = stack[i].isTensor() ? c10::IValue(stack[i].toTensor().clone()) : stack[i];
    node.skip = true;
  }
  for (Node& node : p.nodes)
    for (Arg& a : node.in)
      if (a.kind == Arg::kValue && known.count(a.name)) {
        a.kind = Arg::kConstant;
        a.constant = known.at(a.name);
      }
}

}  // namespace

// The batch-dependent constants at `batch`, constants folded, ops with kernels of the runtime's own, then the
// fused schedule, then slots for both.
std::shared_ptr<const Schedule> PackedModel::make_schedule(int64_t batch) const {
  auto s = std::make_shared<Schedule>();
  s->graph = *graph_;
  for (Node& node : s->graph.nodes)
    for (Arg& a : node.in) {
      if (a.batch.empty()) continue;
      if (a.constant.isInt()) {
        a.constant = fit_at(a.batch[0], batch);
      } else {
        c10::List<int64_t> list;
        for (const BatchAffine& f : a.batch) list.push_back(fit_at(f, batch));
        a.constant = list;
      }
    }
  fold_constants(s->graph, output_);
  auto constant_tensor = [&](const Arg& a) { return constant_tensor_of(a, tensors_, decoded_); };
  for (Node& node : s->graph.nodes) {
    select_own_op(node, constant_tensor);
    if (node.own == OwnOp::kDepthwise && !node.float_reason.empty())
      node.float_reason = "a depthwise convolution (fp32, the runtime's own kernel)";
  }
  s->fused = s->graph;
  fuse(s->fused.nodes, output_);
  resolve(s->graph, output_);
  resolve(s->fused, output_);
  return s;
}

std::shared_ptr<const Schedule> PackedModel::schedule_for(int64_t batch) const {
  if (!batch_generic_ || batch == input_.shape[0]) return traced_;
  std::lock_guard<std::mutex> lock(schedules_->mutex);
  const uint64_t use = ++schedules_->uses;
  auto& by_batch = schedules_->by_batch;
  if (auto it = by_batch.find(batch); it != by_batch.end()) {
    it->second.second = use;
    return it->second.first;
  }
  std::shared_ptr<const Schedule> s;
  try {
    s = make_schedule(batch);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "packed model '" + file_->path() + "' at batch size " +
                                                 std::to_string(batch) + ": " + first_line_of(e));
  }
  if (by_batch.size() >= ScheduleCache::kMaxBatchSizes) {
    auto oldest = by_batch.begin();
    for (auto it = by_batch.begin(); it != by_batch.end(); ++it)
      if (it->second.second < oldest->second.second) oldest = it;
    by_batch.erase(oldest);
  }
  by_batch.emplace(batch, std::make_pair(s, use));
  return s;
}

std::vector<std::string> PackedModel::integer_layers() const {
  std::set<std::string> out;
  for (const Node& node : traced_->graph.nodes)
    if (node.integer) out.insert(node.layer);
  return {out.begin(), out.end()};
}

std::vector<std::string> PackedModel::dynamic_layers() const {
  std::set<std::string> out;
  for (const Node& node : traced_->graph.nodes)
    if (node.integer && !node.act) out.insert(node.layer);
  return {out.begin(), out.end()};
}

std::map<std::string, std::string> PackedModel::float_layers() const {
  std::map<std::string, std::string> out;
  for (const Node& node : traced_->graph.nodes)
    if (!node.float_reason.empty()) {
      for (const Arg& a : node.in)
        if (a.kind == Arg::kWeight) out.emplace(a.name, node.float_reason);
      if (!node.layer.empty()) out.emplace(node.layer, node.float_reason);
    }
  return out;
}

std::vector<NodeProfile> PackedModel::profile(const at::Tensor& x, int runs) const {
  torch::NoGradGuard no_grad;
  const int64_t n = x.dim() == 0 ? 0 : x.size(0);
  if (n < 1 || (!batch_generic_ && n != input_.shape[0]) || runs < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "packed model '" + file_->path() + "': profile a batch of " +
                    (batch_generic_ ? std::string("at least 1") : std::to_string(input_.shape[0])) + ", at least once");
  const std::shared_ptr<const Schedule> schedule = schedule_for(n);
  const std::vector<Node>& nodes = schedule->fused.nodes;
  std::vector<double> seconds(nodes.size(), 0.0);
  // Warm, past the runs that choose which ops run split (split_choice.h), so that every timed run runs the choice.
  for (int w = 0; w <= runtime::SplitChoice::kChoosingRuns; ++w) run(schedule->fused, x, nullptr, nullptr);
  for (int r = 0; r < runs; ++r) run(schedule->fused, x, nullptr, &seconds);
  std::vector<NodeProfile> out;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (!nodes[i].skip) {
      const bool own = (nodes[i].own != OwnOp::kNone && nodes[i].own != OwnOp::kView) ||  // views are ATen's
                       nodes[i].op.rfind("adze::", 0) == 0;
      out.push_back({nodes[i].op + nodes[i].fused, nodes[i].layer, nodes[i].integer, own, seconds[i] / runs});
    }
  return out;
}

std::map<std::string, int> PackedModel::aten_ops() const {
  std::map<std::string, int> out;
  for (const Node& node : traced_->fused.nodes)
    if (node.operation && !node.skip && !node.integer && (node.own == OwnOp::kNone || node.own == OwnOp::kView))
      ++out[node.op];
  return out;
}

at::Tensor PackedModel::forward(const at::Tensor& x) const { return forward(x, nullptr); }

at::Tensor PackedModel::forward(const at::Tensor& x, std::map<std::string, at::Tensor>* layer_outputs,
                                const std::map<std::string, at::Tensor>* from) const {
  torch::NoGradGuard no_grad;
  if (from) {  // one call, on the schedule that records layer outputs
    if (!layer_outputs || x.dim() == 0 || x.size(0) < 1 || (!batch_generic_ && x.size(0) != input_.shape[0]))
      throw Error(ErrorKind::kInvalidArgument, "packed model '" + file_->path() +
                                                   "': layer outputs replaced from the simulation's for one batch of " +
                                                   std::to_string(input_.shape[0]) + " only");
    return run(schedule_for(x.size(0))->graph, x, layer_outputs, nullptr, from);
  }
  if (x.scalar_type() != parse_dtype(input_.dtype))
    throw Error(ErrorKind::kInvalidArgument, "packed model '" + file_->path() + "': input of type " +
                                                 c10::toString(x.scalar_type()) + ", expected " + input_.dtype);
  const std::string what = "packed model '" + file_->path() + "'";
  if (batch_generic_) {  // one call at x's batch size
    if (x.dim() > 0 && x.size(0) == 0)
      throw Error(ErrorKind::kInvalidArgument, "failed to run " + what + ": an empty batch");
    InputSpec at_n = input_;
    if (x.dim() > 0) at_n.shape[0] = x.size(0);
    return forward_in_batches(x, at_n, what, [&](const at::Tensor& b) {
      const std::shared_ptr<const Schedule> s = schedule_for(b.size(0));
      return layer_outputs ? run(s->graph, b, layer_outputs) : run(s->fused, b, nullptr);
    });
  }
  std::map<std::string, std::vector<at::Tensor>> pieces;
  at::Tensor y = forward_in_batches(x, input_, what, [&](const at::Tensor& b) {
    const Schedule& s = *traced_;
    std::map<std::string, at::Tensor> outs;
    at::Tensor r = layer_outputs ? run(s.graph, b, &outs) : run(s.fused, b, nullptr);
    for (auto& [name, t] : outs) pieces[name].push_back(t);
    return r;
  });
  if (layer_outputs) {
    const int64_t n = x.size(0), traced = input_.shape[0];
    for (auto& [name, list] : pieces) {
      at::Tensor joined = list.size() == 1 ? list[0] : torch::cat(list, 0);
      (*layer_outputs)[name] =
          joined.dim() > 0 && joined.size(0) == ((n + traced - 1) / traced) * traced ? joined.slice(0, 0, n) : joined;
    }
  }
  return y;
}

at::Tensor PackedModel::run(const Program& program, const at::Tensor& x,
                            std::map<std::string, at::Tensor>* layer_outputs, std::vector<double>* node_seconds,
                            const std::map<std::string, at::Tensor>* from) const {
  const runtime::PoolScope pool(pool_.get());
  // Below autograd's dispatch keys (the no-grad guard of every caller still holds): an ATen view op then costs
  // about half (fortune-gpt's seven view ops per block, `adze bench --profile`, one profile of each build: 6.0 ->
  // 3.7 us). The tensors made are ordinary ones, unlike InferenceMode's, which a caller could not later change in
  // place.
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  std::vector<c10::IValue> env(static_cast<std::size_t>(program.slots));
  env[0] = x;
  auto value = [&](const Arg& a) -> const c10::IValue& {
    return a.kind == Arg::kValue ? env[static_cast<std::size_t>(a.slot)] : a.constant;
  };
  auto set = [&](const Node& node, c10::IValue v) { env[static_cast<std::size_t>(node.out_slots[0])] = std::move(v); };
  std::map<std::string, int> seen;
  auto record = [&](const Node& node) {
    if (!layer_outputs || node.output_of.empty()) return;
    c10::IValue& v = env[static_cast<std::size_t>(node.out_slots[0])];
    const std::string key = layer_output_key(node.output_of, seen);
    // A copy: a later in-place op (files written before in-place ops were traced out of place) may change it.
    if (v.isTensor()) (*layer_outputs)[key] = v.toTensor().clone();
    if (!from || !v.isTensor()) return;
    const auto given = from->find(key);
    if (given != from->end() && given->second.sizes() == v.toTensor().sizes())
      v = given->second.to(v.toTensor().scalar_type()).clone();
  };
  auto bias_of = [&](const Node& node, std::size_t i) -> at::Tensor {
    if (node.in.size() > i) {
      const c10::IValue& b = value(node.in[i]);
      return b.isTensor() ? b.toTensor() : at::Tensor();
    }
    return node.fused_bias ? *node.fused_bias : at::Tensor();
  };
  auto output_ops = [&](const Node& node) {  // what fusion.h folded into the node's outputs
    OutputOps out{node.clamp};
    out.quant = node.out_quant;
    if (!node.residual) return out;
    const c10::IValue& r = value(*node.residual);
    if (!r.isTensor())
      throw Error(ErrorKind::kInvalidArgument,
                  "packed runtime: the residual add after " + node.op + " of a " + r.tagKind() + ", not a tensor");
    out.residual = {r.toTensor(), node.residual_quant};
    return out;
  };
  // Ranges a convolution or a max pool took of its output for the convolutions that read it
  // (Node::passes_range); none where layer outputs may be replaced (`from`).
  std::vector<ValueRange> ranges(from ? 0 : static_cast<std::size_t>(program.slots));
  auto run_node = [&](const Node& node) {
    if (node.integer && is_convolution(node.op)) {
      const at::Tensor& in =
          node.act ? env[static_cast<std::size_t>(node.act_slot)].toTensor() : value(node.in[0]).toTensor();
      const bool passed = !ranges.empty() && !node.act && node.in[0].kind == Arg::kValue;
      ValueRange* const out_range =
          !ranges.empty() && node.passes_range ? &ranges[static_cast<std::size_t>(node.out_slots[0])] : nullptr;
      set(node, packed_conv2d(*layers_.at(node.layer), in, bias_of(node, 2), node.stride, node.padding, node.dilation,
                              node.act ? &*node.act : nullptr, true, output_ops(node), !node.channels_last_out,
                              passed ? &ranges[static_cast<std::size_t>(node.in[0].slot)] : nullptr, out_range));
      return;
    }
    if (node.op == "adze::packed_matmul") {
      const at::Tensor& in =
          node.act ? env[static_cast<std::size_t>(node.act_slot)].toTensor() : value(node.in[0]).toTensor();
      // Every output op in the kernels, unless a GELU comes between the clamp and the fake quantization, or the
      // layer is factored (its kernels take a clamp only); fusion.h folds no residual into either.
      const bool kernels_finish = node.second_factor.empty() && node.post == PostOp::kNone;
      at::Tensor y = node.second_factor.empty()
                         ? packed_matmul(*layers_.at(node.layer), in, bias_of(node, 1), node.act ? &*node.act : nullptr,
                                         node.integer, kernels_finish ? output_ops(node) : OutputOps{node.clamp})
                         : packed_factored_matmul(*layers_.at(node.layer), *layers_.at(node.second_factor), in,
                                                  bias_of(node, 1), node.act ? &*node.act : nullptr, node.clamp);
      if (node.post != PostOp::kNone) gelu_in_place(y, node.post == PostOp::kGeluTanh);
      if (!kernels_finish && node.out_quant) fake_quantize_in_place(y, *node.out_quant);
      set(node, std::move(y));
      return;
    }
    if (node.op == "adze::packed_embedding") {
      set(node, packed_embedding(*layers_.at(node.layer), value(node.in[0]).toTensor()));
      return;
    }
    if (node.op == kMonarchOp) {
      const LayerView &first = *layers_.at(node.layer + kFirstFactor),
                      &second = *layers_.at(node.layer + kSecondFactor);
      const at::Tensor& x = value(node.in[0]).toTensor();
      if (node.in.size() == 2) {
        at::Tensor y = packed_monarch_matmul(first, second, x, bias_of(node, 1), node.integer, node.clamp);
        if (node.post != PostOp::kNone) gelu_in_place(y, node.post == PostOp::kGeluTanh);
        if (node.out_quant) fake_quantize_in_place(y, *node.out_quant);
        set(node, std::move(y));
        return;
      }
      // A 1x1 convolution: every stride-th pixel's channels, channels last, through the layer; the output stays
      // channels last in memory.
      const std::vector<int64_t> stride = value(node.in[2]).toIntVector();
      if (x.dim() != 4)
        throw Error(ErrorKind::kInvalidArgument, "packed monarch: convolution input " + c10::str(x.sizes()));
      const at::Tensor pixels =
          x.slice(2, 0, x.size(2), stride[0]).slice(3, 0, x.size(3), stride[1]).permute({0, 2, 3, 1});
      set(node, packed_monarch_matmul(first, second, pixels, bias_of(node, 1), node.integer, node.clamp)
                    .permute({0, 3, 1, 2}));
      return;
    }
    if (node.own != OwnOp::kNone) {
      const bool take_range = node.passes_range && !ranges.empty();
      float range[2] = {0.0f, 0.0f};
      at::Tensor y = run_own_op(
          node, [&](std::size_t i) -> const c10::IValue& { return value(node.in[i]); }, take_range ? range : nullptr);
      if (y.defined()) {
        if (take_range) ranges[static_cast<std::size_t>(node.out_slots[0])] = {range[0], range[1], true};
        if (node.own == OwnOp::kAdd) apply_clamp_and_quant(y, node.clamp, node.out_quant);
        set(node, std::move(y));
        return;
      }
    }
    if (node.op == "prim::ListConstruct") {
      if (node.type.find("Tensor") != std::string::npos) {
        c10::List<at::Tensor> list;
        for (const Arg& a : node.in) list.push_back(value(a).toTensor());
        set(node, list);
      } else if (node.type.find("int") != std::string::npos) {
        c10::List<int64_t> list;
        for (const Arg& a : node.in) list.push_back(value(a).toInt());
        set(node, list);
      } else {
        throw Error(ErrorKind::kUnsupported, "packed runtime: a list of " + node.type);
      }
      return;
    }
    if (node.op == "prim::ListUnpack") {
      const auto list = value(node.in[0]).toListRef();
      if (list.size() != node.out.size())
        throw Error(ErrorKind::kInternal, "packed runtime: a list of the wrong length");
      for (std::size_t i = 0; i < list.size(); ++i) env[static_cast<std::size_t>(node.out_slots[i])] = list[i];
      return;
    }
    torch::jit::Stack stack;
    for (const Arg& a : node.in) stack.push_back(value(a));
    try {
      node.operation(stack);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::kInvalidArgument, "packed runtime: " + node.op + " failed: " + e.what_without_backtrace());
    }
    if (stack.size() != node.out.size())
      throw Error(ErrorKind::kInternal, "packed runtime: " + node.op + " returned the wrong number of values");
    // What the fused ops would have done, where an own op fell back to ATen here.
    if (node.alpha != 1 && node.own == OwnOp::kMatmul) stack[0] = stack[0].toTensor() * node.alpha;
    if (node.own == OwnOp::kAdd || node.own == OwnOp::kMaxPool2d) {
      at::Tensor y = stack[0].toTensor();
      apply_clamp_and_quant(y, node.clamp, node.out_quant);
      stack[0] = y;
    }
    for (std::size_t i = 0; i < node.out.size(); ++i)
      env[static_cast<std::size_t>(node.out_slots[i])] = std::move(stack[i]);
  };
  // On more than one thread, the ops before the schedule's cut may split over the threads and the others run
  // alone; its first runs time candidate cuts (split_choice.h). A cut of 0 opens no team.
  const std::size_t nodes = program.nodes.size();
  const int threads = omp_get_max_threads();
  runtime::SplitChoice::Run plan;
  if (threads > 1 && !runtime::in_parallel_work() && !omp_in_parallel()) plan = program.split.next_run(nodes, threads);
  std::vector<double> op_seconds(plan.timed ? nodes : 0);
  std::vector<bool> op_split(plan.timed ? nodes : 0);
  const auto run_start = std::chrono::steady_clock::now();
  auto step = [&](std::size_t i) {
    const Node& node = program.nodes[i];
    if (node.skip) return;
    const runtime::AloneScope alone(i >= plan.cut);
    const bool clocked = node_seconds || plan.timed;
    const auto start = clocked ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    const uint64_t bodies = runtime::work_context().bodies;
    run_node(node);
    if (clocked) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (node_seconds) (*node_seconds)[i] += s;
      if (plan.timed) op_seconds[i] = s, op_split[i] = runtime::work_context().bodies != bodies;
    }
    record(node);
    for (int v : program.release[i]) env[static_cast<std::size_t>(v)] = c10::IValue();
  };
  // Each stretch of nodes before the cut that the runtime's kernels compute goes on one standing team
  // (runtime/parallel.h); an ATen op that computes runs between two, with ATen's own threads.
  const auto on_team = [&](std::size_t i) { return i < plan.cut && program.on_team[i]; };
  for (std::size_t i = 0; i < nodes;) {
    if (!on_team(i)) {
      step(i++);
      continue;
    }
    runtime::with_standing_team([&] {
      for (; i < nodes && on_team(i); ++i) step(i);
    });
  }
  if (plan.timed)
    program.split.record(plan, threads, op_seconds, op_split,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
  const c10::IValue& out = env[static_cast<std::size_t>(program.output_slot)];
  if (!out.isTensor())
    throw Error(ErrorKind::kUnsupported, "packed model '" + file_->path() + "' does not return a tensor");
  return out.toTensor();
}

}  // namespace packed
}  // namespace adze
