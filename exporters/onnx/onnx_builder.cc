#include "exporters/onnx/onnx_builder.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include "core/error.h"
#include "exporters/graph_values.h"
#include "model/batch_symbolic.h"

namespace adze {

OnnxBuilder::OnnxBuilder(const CompressedModel& m, const OnnxOptions& options, onnx::GraphProto* g)
    : m_(m), options_(options), g_(g) {
  for (const auto& l : m.table.layers) weight_layer_[l.weight] = &l;
}

namespace {

// The a·n + b of each int of a constant list or int (empty when none depends on the batch size n).
std::vector<BatchAffine> batch_affines(const torch::jit::Value* v) {
  std::vector<BatchAffine> affines;
  bool any = false;
  auto add = [&](const torch::jit::Node* constant, std::size_t ints) {
    std::vector<BatchAffine> a = batch_affine_of(constant);
    if (a.empty()) a.resize(ints, BatchAffine{0, 0});
    for (const auto& x : a) any |= x.a != 0;
    affines.insert(affines.end(), a.begin(), a.end());
  };
  if (v->node()->kind() == c10::prim::ListConstruct) {
    for (const torch::jit::Value* i : v->node()->inputs()) add(i->node(), 1);
  } else if (v->node()->kind() == c10::prim::Constant) {
    const auto iv = torch::jit::toIValue(v);
    add(v->node(), iv && iv->isIntList() ? iv->toIntList().size() : 1);
  }
  return any ? affines : std::vector<BatchAffine>{};
}

}  // namespace

c10::IValue OnnxBuilder::constant(const torch::jit::Value* v) const {
  if (options_.dynamic_batch && !batch_affines(v).empty())
    throw Error(ErrorKind::kUnsupported, std::string("onnx: dynamic batch: an argument of ") +
                                             v->uses().front().user->kind().toQualString() +
                                             " depends on the batch size (export with a fixed --batch)");
  return constant_of(v, "onnx");
}

std::string OnnxBuilder::shape(const torch::jit::Value* list) {
  const auto affines = options_.dynamic_batch ? batch_affines(list) : std::vector<BatchAffine>{};
  const std::vector<int64_t> values = constant_of(list, "onnx").toIntVector();
  if (affines.empty()) return ints(values);
  if (batch_.empty()) {
    const std::string dims = node("Shape", {"input"});
    batch_ = node("Gather", {dims, ints({0})}, [](onnx::NodeProto* p) { attr(p, "axis", int64_t{0}); });
  }
  // Runs of batch-independent ints stay constants; each batch-dependent one is a·n + b.
  std::vector<std::string> parts;
  std::vector<int64_t> run;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (affines[i].a == 0) {
      run.push_back(values[i]);
      continue;
    }
    if (!run.empty()) parts.push_back(ints(run));
    run.clear();
    parts.push_back(node("Add", {node("Mul", {batch_, ints({affines[i].a})}), ints({affines[i].b})}));
  }
  if (!run.empty()) parts.push_back(ints(run));
  return parts.size() == 1 ? parts.front()
                           : node("Concat", parts, [](onnx::NodeProto* p) { attr(p, "axis", int64_t{0}); });
}

bool OnnxBuilder::is_none(const torch::jit::Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; }

std::string OnnxBuilder::initializer(const std::string& name, const at::Tensor& value) {
  const at::Tensor t = value.contiguous().cpu();
  onnx::TensorProto* p = g_->add_initializer();
  p->set_name(name);
  for (int64_t d : t.sizes()) p->add_dims(d);
  switch (t.scalar_type()) {
    case at::kFloat:
      p->set_data_type(onnx::TensorProto::FLOAT);
      break;
    case at::kLong:
      p->set_data_type(onnx::TensorProto::INT64);
      break;
    case at::kInt:
      p->set_data_type(onnx::TensorProto::INT32);
      break;
    case at::kChar:
      p->set_data_type(onnx::TensorProto::INT8);
      break;
    case at::kByte:
      p->set_data_type(onnx::TensorProto::UINT8);
      break;
    case at::kBool:
      p->set_data_type(onnx::TensorProto::BOOL);
      break;
    default:
      throw Error(ErrorKind::kUnsupported,
                  "onnx: initializer '" + name + "' of type " + std::string(c10::toString(t.scalar_type())));
  }
  p->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size()));  // little-endian
  return name;
}

std::string OnnxBuilder::ints(const std::vector<int64_t>& v) {
  return initializer(fresh("const"), torch::tensor(v, torch::kLong));
}

std::string OnnxBuilder::scalar(double x) {
  return initializer(fresh("const"), torch::tensor({static_cast<float>(x)}).reshape({}));
}

std::string OnnxBuilder::row_max(const std::string& x) {
  const auto it = row_max_.find(x);
  if (it != row_max_.end()) return it->second;
  const std::string largest = node("ReduceMax", {node("Abs", {x})}, [](onnx::NodeProto* p) {
    attr(p, "axes", std::vector<int64_t>{-1});
    attr(p, "keepdims", int64_t{1});
  });
  // A row of zeros keeps a positive divisor: its codes are then all the zero point's, its outputs 0.
  return row_max_[x] = node("Max", {largest, scalar(1e-30)});
}

std::string OnnxBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                              const std::function<void(onnx::NodeProto*)>& attrs, std::string output,
                              const std::string& domain) {
  onnx::NodeProto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(fresh(op));
  if (!domain.empty()) n->set_domain(domain);
  for (const auto& i : inputs) n->add_input(i);
  if (output.empty()) output = fresh(op);
  n->add_output(output);
  if (attrs) attrs(n);
  return output;
}

void OnnxBuilder::attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void OnnxBuilder::attr(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void OnnxBuilder::attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

std::vector<int64_t> OnnxBuilder::pads(const std::vector<int64_t>& symmetric) {
  std::vector<int64_t> both = symmetric;
  both.insert(both.end(), symmetric.begin(), symmetric.end());
  return both;
}

const Encoding* OnnxBuilder::encoding(const torch::jit::Value* weight) const {
  const NamedTensor* t = m_.model.tensor_of(weight);
  if (!t) return nullptr;
  const auto layer = weight_layer_.find(t->name);
  if (layer == weight_layer_.end()) return nullptr;
  const auto e = m_.encodings.find(layer->second->name);
  return e != m_.encodings.end() ? &e->second : nullptr;
}

const Encoding* OnnxBuilder::quantized_encoding(const torch::jit::Value* weight) const {
  const Encoding* e = encoding(weight);
  return e && e->config.quantized() && !e->config.decomposed() ? e : nullptr;
}

const Encoding* OnnxBuilder::decomposed_encoding(const torch::jit::Value* weight) const {
  const Encoding* e = encoding(weight);
  return e && e->config.decomposed() ? e : nullptr;
}

std::string OnnxBuilder::in(const torch::jit::Value* v) {
  if (auto it = names_.find(v); it != names_.end()) return it->second;
  std::string name;
  if (const NamedTensor* t = m_.model.tensor_of(v)) {
    // model.pt holds every weight decoded (bit for bit what its Encoding decodes to).
    name = initializer(t->name, t->value.to(t->value.is_floating_point() ? torch::kFloat : t->value.scalar_type()));
  } else if (const NamedTensor* p =
                 v->node()->kind() == c10::aten::t ? m_.model.tensor_of(v->node()->input(0)) : nullptr) {
    name = initializer(p->name + ".t", p->value.to(torch::kFloat).t().contiguous());  // transposed once, here
  } else {
    throw Error(ErrorKind::kInternal, "onnx: value %" + v->debugName() + " used before it is defined");
  }
  names_[v] = name;
  return name;
}

}  // namespace adze
