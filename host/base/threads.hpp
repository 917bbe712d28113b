#pragma once
// Thread names, so `top -H` and `perf` show which part of the host spends a
// core: ef-http, ef-commit, ef-publish and so on.

#include <pthread.h>

namespace eventflow {

/// Names the calling thread; Linux keeps the first 15 characters.
inline void nameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace eventflow
