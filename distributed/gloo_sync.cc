#include "distributed/gloo_sync.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/error.h"

namespace adze {
namespace {

class GlooSync : public GradientSync {
 public:
  GlooSync(c10::intrusive_ptr<c10d::ProcessGroupGloo> group, int rank, int size)
      : group_(std::move(group)), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void average(std::vector<at::Tensor>& tensors) override { start_average(tensors)->wait(); }
  void sum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one = {t};
      group_->allreduce(one)->wait();
    }
  }
  // Gloo's own thread sends and sums while the caller goes on; one all-reduce per tensor.
  std::unique_ptr<PendingAverage> start_average(std::vector<at::Tensor>& tensors) override {
    struct Pending : PendingAverage {
      std::vector<std::pair<at::Tensor, c10::intrusive_ptr<c10d::Work>>> works;
      int size = 1;
      void wait() override {
        for (auto& [t, work] : works) {
          work->wait();
          t.div_(size);
        }
        works.clear();
      }
    };
    auto pending = std::make_unique<Pending>();
    pending->size = size_;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one = {t};
      pending->works.emplace_back(t, group_->allreduce(one));
    }
    return pending;
  }

 private:
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  int rank_, size_;
};

std::optional<long> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0') throw Error(ErrorKind::kInvalidArgument, std::string(name) + "='" + v + "' is not an integer");
  return x;
}

}  // namespace

std::shared_ptr<GradientSync> gloo_gradient_sync(const Rendezvous& r) {
  if (r.size < 1 || r.rank < 0 || r.rank >= r.size)
    throw Error(ErrorKind::kInvalidArgument, "data-parallel rank " + std::to_string(r.rank) + " of " +
                                                 std::to_string(r.size) + ": the rank must lie in [0, size)");
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(r.timeout_s * 1000));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    if (!r.file.empty()) {
      store = c10::make_intrusive<c10d::FileStore>(r.file, r.size);
    } else if (r.port > 0) {
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(r.port);
      o.isServer = r.rank == 0;
      o.numWorkers = r.size;
      o.timeout = timeout;
      store = c10::make_intrusive<c10d::TCPStore>(r.host, o);
    } else {
      throw Error(ErrorKind::kInvalidArgument, "data-parallel ranks need a store: a file path or host:port");
    }
    store->setTimeout(timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, r.rank, r.size, options);
    return std::make_shared<GlooSync>(std::move(group), r.rank, r.size);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, "data-parallel rank " + std::to_string(r.rank) + " of " + std::to_string(r.size) +
                                    " could not join its group: " + first_line_of(e));
  }
}

std::optional<Rendezvous> rendezvous_from_environment() {
  Rendezvous r;
  std::optional<long> size = env_int("ADZE_WORLD_SIZE"), rank = env_int("ADZE_RANK");
  if (!size) {
    size = env_int("OMPI_COMM_WORLD_SIZE");
    rank = env_int("OMPI_COMM_WORLD_RANK");
  }
  if (!size) return std::nullopt;
  r.size = static_cast<int>(*size);
  r.rank = static_cast<int>(rank.value_or(-1));
  if (const char* file = std::getenv("ADZE_STORE"); file && *file) {
    r.file = file;
  } else if (const char* master = std::getenv("ADZE_MASTER"); master && *master) {
    const std::string m = master;
    const auto colon = m.rfind(':');
    if (colon == std::string::npos)
      throw Error(ErrorKind::kInvalidArgument, "ADZE_MASTER='" + m + "': expected host:port");
    r.host = m.substr(0, colon);
    r.port = std::atoi(m.c_str() + colon + 1);
    if (r.port <= 0 || r.port > 65535)
      throw Error(ErrorKind::kInvalidArgument, "ADZE_MASTER='" + m + "': the port must lie in 1..65535");
  } else {
    throw Error(ErrorKind::kInvalidArgument,
                "data-parallel ranks need ADZE_STORE (a file every rank sees) or ADZE_MASTER (host:port)");
  }
  return r;
}

}  // namespace adze
