#include "distributed/mpi_sync.h"

#include <ATen/ATen.h>
#include <mpi.h>

#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace adze {
namespace {

MPI_Datatype mpi_type(const at::Tensor& t) {
  if (!t.is_contiguous()) throw Error(ErrorKind::kInternal, "MPI gradient average: a tensor that is not contiguous");
  if (t.scalar_type() == at::kFloat) return MPI_FLOAT;
  if (t.scalar_type() == at::kDouble) return MPI_DOUBLE;
  throw Error(ErrorKind::kInternal,
              std::string("MPI gradient average: tensors of ") + c10::toString(t.scalar_type()) + " are not averaged");
}

int count_of(const at::Tensor& t) {
  if (t.numel() > std::numeric_limits<int>::max())
    throw Error(ErrorKind::kInternal, "MPI gradient average: a tensor of more than 2^31 elements");
  return static_cast<int>(t.numel());
}

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(ErrorKind::kIo, std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

class MpiSync : public GradientSync {
 public:
  explicit MpiSync(bool finalize) : finalize_(finalize) {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiSync() override {
    MPI_Comm_free(&comm_);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalize_ && !finalized) MPI_Finalize();
  }
  MpiSync(const MpiSync&) = delete;
  MpiSync& operator=(const MpiSync&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void average(std::vector<at::Tensor>& tensors) override {
    sum(tensors);
    for (auto& t : tensors) t.div_(size_);
  }
  void sum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors)
      check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), count_of(t), mpi_type(t), MPI_SUM, comm_), "MPI_Allreduce");
  }
  // Non-blocking all-reduces: Open MPI moves them on inside MPI calls, so most of the work happens in wait().
  std::unique_ptr<PendingAverage> start_average(std::vector<at::Tensor>& tensors) override {
    struct Pending : PendingAverage {
      std::vector<at::Tensor> tensors;
      std::vector<MPI_Request> requests;
      int size = 1;
      void wait() override {
        check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
        requests.clear();
        for (auto& t : tensors) t.div_(size);
        tensors.clear();
      }
      ~Pending() override {
        if (!requests.empty()) MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
      }
    };
    auto pending = std::make_unique<Pending>();
    pending->size = size_;
    for (auto& t : tensors) {
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), count_of(t), mpi_type(t), MPI_SUM, comm_, &request),
            "MPI_Iallreduce");
      pending->requests.push_back(request);
      pending->tensors.push_back(t);
    }
    return pending;
  }

 private:
  bool finalize_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<GradientSync> mpi_gradient_sync() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!size || !*size)
    throw Error(ErrorKind::kInvalidArgument,
                "the MPI data-parallel backend needs ranks started by mpirun (this process was not)");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_SERIALIZED)
      throw Error(ErrorKind::kIo, "this MPI library cannot serve calls from more than one thread (serialized)");
  }
  return std::make_shared<MpiSync>(!initialized);
}

}  // namespace adze
