// Saving a Model as a TorchScript file that torch::jit::load and Python's torch.jit.load both read.
//
// The module mirrors the model's names: "features.0.weight" becomes parameter `weight` of submodule
// `features.0`, so loading the file back (frontend.h) gives the same names. Its forward is the model's
// functional graph with each parameter read from its attribute.
#pragma once

#include <map>
#include <string>

namespace adze {

class Model;

/// Writes `path` atomically (nothing is left behind on failure). `extra_files` go into the archive beside the
/// code (torch::jit::load reads them back by name).
void save_torchscript(const Model& model, const std::string& path,
                      const std::map<std::string, std::string>& extra_files = {});

}  // namespace adze
