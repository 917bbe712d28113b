#pragma once
// Thread names, so `top -H` and `perf` show which part of the host spends a
// core: ef-http, ef-commit, ef-publish and so on.

#include <pthread.h>

#include "base/crash.hpp"

namespace eventflow {

/// Names the calling thread; Linux keeps the first 15 characters. A named
/// thread is one of the host's own: it also gets a signal stack, so that a
/// crash on it (a stack overflow too) is reported (base/crash.hpp).
inline void nameThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
  crash::prepareThread();
}

}  // namespace eventflow
