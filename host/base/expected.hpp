#pragma once
// A value or an error, shaped like C++23 std::expected (not yet in GCC 12's
// C++20 mode). Expected failures travel as values; exceptions are for bugs.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace eventflow {

struct Error {
  std::string message;
};

// [[nodiscard]]: a dropped Expected is a failure nobody sees. Where dropping
// one is right, say why and cast it away: `(void)queue.publish(...)`.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  Expected(Error error) : data_(std::in_place_index<1>, std::move(error)) {}

  bool hasValue() const { return data_.index() == 0; }
  explicit operator bool() const { return hasValue(); }
  T& value() { assert(hasValue()); return std::get<0>(data_); }
  const T& value() const { assert(hasValue()); return std::get<0>(data_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { assert(!hasValue()); return std::get<1>(data_); }

 private:
  std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}
  bool hasValue() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error makeError(std::string message) { return Error{std::move(message)}; }

}  // namespace eventflow
