// CUDA graphs for the training step (see src/train/cuda_graph.rs). Built against libtorch's CUDA headers
// when the libtorch has CUDA; otherwise every call reports that this build has no CUDA graphs.
#include <cstdlib>
#include <cstring>
#include <exception>

static char* copy_message(const char* text) {
  char* copy = static_cast<char*>(std::malloc(std::strlen(text) + 1));
  if (copy) std::strcpy(copy, text);
  return copy;
}

#ifdef ADARAT_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

namespace {
struct StepGraph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream previous;
  bool capturing = false;
  explicit StepGraph(c10::cuda::CUDAStream previous) : previous(previous) {}
};
}  // namespace

#define GUARDED(body)                                   \
  try {                                                 \
    body                                                \
  } catch (const std::exception& e) {                   \
    if (error) *error = copy_message(e.what());         \
  } catch (...) {                                       \
    if (error) *error = copy_message("unknown failure"); \
  }

// Starts capturing, on a side stream of `device`, everything queued until adarat_graph_end.
extern "C" void* adarat_graph_begin(int device, char** error) {
  GUARDED({
    auto index = static_cast<c10::DeviceIndex>(device);
    // Capture must not overlap work still running on the stream the step normally uses.
    c10::cuda::device_synchronize();
    auto* step = new StepGraph(c10::cuda::getCurrentCUDAStream(index));
    c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(false, index));
    try {
      step->graph.capture_begin();
    } catch (...) {
      c10::cuda::setCurrentCUDAStream(step->previous);
      delete step;
      throw;
    }
    step->capturing = true;
    return step;
  })
  return nullptr;
}

// Ends the capture (also after a failed step, to leave the stream usable); 0 when the graph is usable.
extern "C" int adarat_graph_end(void* handle, char** error) {
  auto* step = static_cast<StepGraph*>(handle);
  int status = 1;
  GUARDED({
    step->capturing = false;
    step->graph.capture_end();
    status = 0;
  })
  c10::cuda::setCurrentCUDAStream(step->previous);
  try {
    c10::cuda::device_synchronize();
  } catch (...) {
  }
  return status;
}

extern "C" int adarat_graph_replay(void* handle, char** error) {
  GUARDED({
    static_cast<StepGraph*>(handle)->graph.replay();
    return 0;
  })
  return 1;
}

extern "C" void adarat_graph_free(void* handle) { delete static_cast<StepGraph*>(handle); }

#else

extern "C" void* adarat_graph_begin(int, char** error) {
  if (error) *error = copy_message("this build's libtorch has no CUDA");
  return nullptr;
}
extern "C" int adarat_graph_end(void*, char**) { return 1; }
extern "C" int adarat_graph_replay(void*, char** error) {
  if (error) *error = copy_message("this build's libtorch has no CUDA");
  return 1;
}
extern "C" void adarat_graph_free(void*) {}

#endif
