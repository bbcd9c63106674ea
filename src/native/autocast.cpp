// bf16 autocast for one device type. tch exposes only CUDA autocast with libtorch's default fp16 dtype;
// bf16 needs no loss scaler (fp32's exponent range), so adarat sets the dtype itself here.
#include <ATen/autocast_mode.h>

static c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }

// Enters a bf16 autocast region; returns 0, or 1 when libtorch refused.
extern "C" int adarat_bf16_autocast_enter(int cuda) {
  try {
    at::autocast::set_autocast_dtype(device_type(cuda), at::kBFloat16);
    at::autocast::set_autocast_enabled(device_type(cuda), true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Leaves the region; the cache of bf16 weight copies is dropped with the outermost region, so an
// optimizer step after it never meets stale copies.
extern "C" int adarat_bf16_autocast_exit(int cuda) {
  try {
    at::autocast::set_autocast_enabled(device_type(cuda), false);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Autocast off on both device types and no region open, whatever was left on this thread.
extern "C" int adarat_autocast_reset() {
  try {
    at::autocast::set_autocast_enabled(c10::DeviceType::CPU, false);
    at::autocast::set_autocast_enabled(c10::DeviceType::CUDA, false);
    for (int nesting = at::autocast::increment_nesting(); nesting > 0;) nesting = at::autocast::decrement_nesting();
    at::autocast::clear_cache();
    return 0;
  } catch (...) {
    return 1;
  }
}

// 1 when autocast is on for the CPU or CUDA on this thread.
extern "C" int adarat_autocast_enabled() {
  return at::autocast::is_autocast_enabled(c10::DeviceType::CPU) ||
         at::autocast::is_autocast_enabled(c10::DeviceType::CUDA);
}
