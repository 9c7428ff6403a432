// Loads a TorchScript model through the installed adze and prints its layer count and MACs.
#include <adze/model/frontend.h>
#include <adze/model/layer_table.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  adze::Model model = adze::load_torchscript(argv[1], {{1, 3, 16, 16}, "float32"});
  const adze::LayerTable table = adze::build_layer_table(model);
  std::cout << "layers " << table.layers.size() << " macs " << table.total_macs << "\n";
  return table.layers.size() == 3 ? 0 : 1;
}
