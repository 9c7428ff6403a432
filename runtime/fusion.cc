#include "runtime/fusion.h"

#include <functional>
#include <map>
#include <set>

#include "runtime/attention.h"
#include "runtime/packed_layer.h"

namespace adze {
namespace packed {
namespace {

bool is_convolution(const std::string& op) { return op == "aten::_convolution" || op == "aten::conv2d"; }

// Every non-skipped node reading each value, an integer layer's calibrated input (act_input) included.
std::map<std::string, std::vector<std::size_t>> readers_of(const std::vector<Node>& nodes) {
  std::map<std::string, std::vector<std::size_t>> readers;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.skip) continue;
    std::set<std::string> read;
    for (const Arg& a : n.in)
      if (a.kind == Arg::kValue && !(n.act && &a == &n.in[0])) read.insert(a.name);
    if (n.act) read.insert(n.act_input);
    if (n.residual) read.insert(n.residual->name);
    for (const auto& v : read) readers[v].push_back(i);
  }
  return readers;
}

bool is_unit(const Arg& a) {
  return a.kind == Arg::kConstant && (a.constant.isInt() || a.constant.isDouble()) &&
         a.constant.toScalar().toDouble() == 1;
}

// The argument of `next` that reads `value`, or -1.
int position_of(const Node& next, const std::string& value) {
  for (std::size_t i = 0; i < next.in.size(); ++i)
    if (next.in[i].kind == Arg::kValue && next.in[i].name == value) return static_cast<int>(i);
  return -1;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A low-rank layer's first factor on the integer kernels read only by its second (dynamic: the runtime quantizes
// the first's product per row), neither with anything fused yet.
bool factor_pair(const Node& node, const Node& next, int at) {
  const std::string first = kFirstFactor, second = kSecondFactor;
  const auto plain = [](const Node& n) {
    return !n.fused_bias && !n.residual && n.post == PostOp::kNone && !n.clamp.active() && n.second_factor.empty();
  };
  return at == 0 && node.op == "adze::packed_matmul" && next.op == node.op && node.integer && next.integer &&
         !next.act && plain(node) && plain(next) && ends_with(node.layer, first) &&
         next.layer == node.layer.substr(0, node.layer.size() - first.size()) + second &&
         (node.in.size() == 1 ||
          (node.in.size() == 2 && node.in[1].kind == Arg::kConstant && node.in[1].constant.isNone()));
}

// Whether an op's output is a tensor, as far as the runtime knows without running it.
bool produces_tensor(const Node& n) {
  return n.own != OwnOp::kNone || is_convolution(n.op) || n.op == "adze::packed_matmul" ||
         n.op == "adze::packed_embedding" || n.op == kMonarchOp;
}

// Folds `next` into `node` when it can: true if it did (next is then skipped, its output now node's).
// `tensor_before(v)`: whether value v is a tensor computed before `node` runs.
bool fold(Node& node, Node& next, const std::function<bool(const std::string&)>& tensor_before) {
  const int at = position_of(next, node.out[0]);
  if (at < 0) return false;
  if (factor_pair(node, next, at)) {  // the pair in one call (packed_factored_matmul), with the second's bias
    node.second_factor = next.layer;
    node.in.resize(1);
    node.in.insert(node.in.end(), next.in.begin() + 1, next.in.end());
    node.fused += "+" + std::string(kSecondFactor).substr(1);
    node.out = next.out;
    next.skip = true;
    return true;
  }
  // A Monarch linear layer takes a clamp or a GELU as a packed matmul does (its bias is an argument already).
  const bool matmul = node.op == "adze::packed_matmul" || (node.op == kMonarchOp && node.in.size() == 2);
  const bool integer_conv = node.integer && is_convolution(node.op);
  const bool no_post = node.post == PostOp::kNone && !node.out_quant;  // nothing folds in after these
  const bool no_clamp = !node.clamp.active();
  const Arg* bias = next.in.size() == 3 && at < 2 ? &next.in[1 - at] : nullptr;  // add(y, b) or add(b, y)
  // A residual add of an integer convolution's or matmul's output and a tensor computed before it (as
  // ResNet's, a transformer's): the other operand added in the kernels' epilogue, before what folds in after.
  const bool integer_product = integer_conv || (node.integer && node.op == "adze::packed_matmul" &&
                                                node.second_factor.empty() && node.in.size() <= 2);
  const Arg* other = bias;
  if (matmul && node.in.size() == 1 && !node.fused_bias && no_clamp && no_post && next.op == "aten::add" && bias &&
      bias->kind == Arg::kTensor && bias->tensor && bias->tensor->dim() == 1 &&
      bias->tensor->scalar_type() == at::kFloat && is_unit(next.in[2])) {
    node.fused_bias = bias->tensor;
    node.fused += "+add";
  } else if (integer_product && !node.residual && no_clamp && node.post == PostOp::kNone && next.own == OwnOp::kAdd &&
             other && other->kind == Arg::kValue && other->name != node.out[0] && is_unit(next.in[2]) &&
             tensor_before(other->name)) {
    node.residual = *other;
    node.residual_quant = node.out_quant;  // a W8A8 model's quantization of the branch, before the add
    node.clamp = next.clamp;               // what had folded into the add already
    node.out_quant = next.out_quant;
    node.fused += "+add" + next.fused;
  } else if (at != 0) {
    return false;  // the rest fold an op whose first argument is node's output
  } else if ((matmul || integer_conv || node.own == OwnOp::kDepthwise || node.own == OwnOp::kAdd) && no_clamp &&
             no_post && next.own == OwnOp::kClamp) {
    node.clamp = {next.lo, next.hi};
    node.fused += "+" + next.op.substr(next.op.find("::") + 2);
  } else if ((matmul || integer_conv || node.own == OwnOp::kAdd || node.own == OwnOp::kMaxPool2d) && !node.out_quant &&
             next.own == OwnOp::kFakeQuant) {
    node.out_quant = next.quant;  // in place on the output, while it is still in cache
    node.fused += "+fake_quantize";
  } else if (matmul && no_post && !node.residual && next.own == OwnOp::kGelu) {
    node.post = next.tanh ? PostOp::kGeluTanh : PostOp::kGelu;
    node.fused += "+gelu";
  } else if (node.own == OwnOp::kMatmul && next.op == "aten::div" && next.in.size() == 2 &&
             next.in[1].kind == Arg::kConstant && (next.in[1].constant.isDouble() || next.in[1].constant.isInt()) &&
             next.in[1].constant.toScalar().toDouble() != 0) {
    node.alpha = static_cast<float>(node.alpha / next.in[1].constant.toScalar().toDouble());
    node.fused += "+div";
  } else {
    return false;
  }
  node.out = next.out;
  next.skip = true;
  return true;
}

// `node`'s output read by one calibrated fake quantization and otherwise only as the input that integer layers
// quantize themselves, with that fake quantization's scale and zero point: it folds into `node` (as fold()
// does), and those layers then read its output, whose codes under that quantization are the same (fake
// quantization is idempotent: (q − z)·s·(1/s) lies within 5e-5 of q − z). ResNet's W8A8 block output, read by
// the next block's convolutions and, quantized, by its residual add, is the case.
bool fold_shared_fake_quant(std::vector<Node>& nodes, Node& node, const std::vector<std::size_t>& readers,
                            const std::function<bool(const std::string&)>& tensor_before) {
  const std::string raw = node.out[0];
  Node* quant = nullptr;
  for (std::size_t i : readers)
    if (nodes[i].own == OwnOp::kFakeQuant && position_of(nodes[i], raw) == 0) quant = &nodes[i];
  if (!quant) return false;
  for (std::size_t i : readers) {
    const Node& n = nodes[i];
    if (&n == quant) continue;
    const bool quantizes_it_alike = n.integer && n.act && n.act_input == raw && n.act->scale == quant->quant.scale &&
                                    n.act->zero_point == quant->quant.zero_point && position_of(n, raw) < 0 &&
                                    !(n.residual && n.residual->name == raw);
    if (!quantizes_it_alike) return false;
  }
  if (!fold(node, *quant, tensor_before)) return false;
  for (std::size_t i : readers)
    if (nodes[i].act_input == raw) nodes[i].act_input = node.out[0];
  return true;
}

// Attention's chain from a matmul (its division folded already): [masked_fill,] softmax over the last
// dimension, and the product of the probabilities with V, each op read only by the next and none of them the
// graph's output. True if folded (the chain is then `node`, kAttention; the others skipped).
bool fold_attention(std::vector<Node>& nodes, Node& node,
                    const std::map<std::string, std::vector<std::size_t>>& readers, const std::string& output) {
  if (node.own != OwnOp::kMatmul || node.in.size() != 2) return false;
  auto only_reader = [&](const Node& n, std::size_t at) -> Node* {  // n's one reader, reading it as argument `at`
    if (n.out.size() != 1 || n.out[0] == output) return nullptr;
    const auto r = readers.find(n.out[0]);
    if (r == readers.end() || r->second.size() != 1) return nullptr;
    Node& next = nodes[r->second[0]];
    for (std::size_t i = 0; i < next.in.size(); ++i)
      if (next.in[i].kind == Arg::kValue && next.in[i].name == n.out[0] && i != at) return nullptr;
    return position_of(next, n.out[0]) == static_cast<int>(at) ? &next : nullptr;
  };
  Node* fill = only_reader(node, 0);
  Node* softmax = fill && fill->own == OwnOp::kMaskedFill ? only_reader(*fill, 0) : fill;
  if (softmax == fill) fill = nullptr;
  if (!softmax || softmax->own != OwnOp::kSoftmax || softmax->dim != -1) return false;
  Node* product = only_reader(*softmax, 0);
  if (!product || product->own != OwnOp::kMatmul || product->in.size() != 2 || product->alpha != 1) return false;
  const Arg mask = fill ? fill->in[1] : Arg{};
  node.in = {node.in[0], node.in[1], mask, product->in[1]};
  node.own = OwnOp::kAttention;
  node.fill = fill ? fill->fill : 0;
  const at::Tensor* constant = mask.kind == Arg::kTensor  ? mask.tensor
                               : mask.constant.isTensor() ? &mask.constant.toTensor()
                                                          : nullptr;
  if (constant) {
    node.constant_mask = true;
    node.mask_prefixes = mask_prefixes(*constant);
  }
  node.fused += fill ? "+masked_fill+softmax+matmul" : "+softmax+matmul";
  node.out = product->out;
  for (Node* n : {fill, softmax, product})
    if (n) n->skip = true;
  return true;
}

}  // namespace

void fuse(std::vector<Node>& nodes, const std::string& output) {
  for (bool changed = true; changed;) {
    changed = false;
    const auto readers = readers_of(nodes);
    // Where each tensor value is computed (the input before all). A fold in this pass only moves a value's
    // producer earlier, so the map errs on the side of not folding until the next pass.
    std::map<std::string, std::size_t> tensor_at = {{"input", 0}};
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (!nodes[i].skip && produces_tensor(nodes[i]))
        for (const auto& o : nodes[i].out) tensor_at.emplace(o, i);
    for (Node& node : nodes) {
      if (node.skip || node.out.size() != 1 || node.out[0] == output) continue;
      const auto r = readers.find(node.out[0]);
      if (r == readers.end()) continue;
      const std::size_t here = static_cast<std::size_t>(&node - nodes.data());
      const auto tensor_before = [&](const std::string& v) {
        const auto t = tensor_at.find(v);
        return t != tensor_at.end() && (v == "input" || t->second < here);
      };
      if (r->second.size() != 1) {
        changed = fold_shared_fake_quant(nodes, node, r->second, tensor_before) || changed;
        continue;
      }
      if (fold(node, nodes[r->second[0]], tensor_before)) {
        changed = true;
      } else if (fold_attention(nodes, node, readers, output)) {
        changed = true;
        break;  // `readers` no longer holds
      }
    }
  }
  // Channels-last outputs: a value may stay channels last if every reader takes any layout, through element-wise
  // ops whose outputs then follow the same rule.
  const auto readers = readers_of(nodes);
  std::map<std::string, bool> memo;
  std::function<bool(const std::string&)> any_layout = [&](const std::string& v) {
    if (v == output) return false;
    if (auto m = memo.find(v); m != memo.end()) return m->second;
    memo[v] = false;  // a cycle (none in a graph) reads as "no"
    bool ok = true;
    const auto r = readers.find(v);
    if (r != readers.end())
      for (std::size_t i : r->second) {
        const Node& n = nodes[i];
        const bool conv = (n.integer && is_convolution(n.op)) || n.own == OwnOp::kDepthwise;
        const bool flatten = n.op == "aten::flatten";  // a reshape: copies what a view cannot take
        const bool elementwise = n.own == OwnOp::kClamp || n.own == OwnOp::kAdd || n.own == OwnOp::kMaxPool2d ||
                                 n.op == "aten::fake_quantize_per_tensor_affine" || n.op == "aten::dropout" ||
                                 n.op == "aten::adaptive_avg_pool2d";
        if (conv || flatten) continue;
        if (!elementwise || n.out.size() != 1 || !any_layout(n.out[0])) {
          ok = false;
          break;
        }
      }
    return memo[v] = ok;
  };
  for (Node& node : nodes)
    if (!node.skip && node.out.size() == 1 &&
        ((node.integer && is_convolution(node.op)) || node.own == OwnOp::kDepthwise))
      node.channels_last_out = any_layout(node.out[0]);
}

}  // namespace packed
}  // namespace adze
