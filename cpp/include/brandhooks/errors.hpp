#pragma once
// One error hierarchy for the whole core. The Python bindings translate each class once
// into a Python exception, and the REST layer translates those once into the error envelope.
#include <stdexcept>
#include <string>

namespace brandhooks {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Input that can never succeed as given (bad id, topic, url, ...). HTTP 400 `Validation`.
class ValidationError : public Error {
 public:
  using Error::Error;
};

// A request body that is not JSON the core can read (a syntax error, bytes that are not UTF-8,
// nesting too deep to parse). HTTP 400 `BadRequest`; a ValidationError for callers that do not
// tell the two apart.
class BadRequestError : public ValidationError {
 public:
  using ValidationError::ValidationError;
};

// The object does not exist, is deleted, or belongs to another brand. HTTP 404.
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// The request contradicts the current state (e.g. a brand-tree cycle). HTTP 409.
class ConflictError : public Error {
 public:
  using Error::Error;
};

// No credentials, or credentials that match no live token. HTTP 401.
class UnauthorizedError : public Error {
 public:
  using Error::Error;
};

// Valid credentials that do not reach the requested brand. HTTP 403.
class ForbiddenError : public Error {
 public:
  using Error::Error;
};

// The database failed (I/O, corruption, a file from a newer version). HTTP 500.
class StorageError : public Error {
 public:
  using Error::Error;
};

// The database cannot take writes for now (the disk is full, or another process holds its
// lock past busy_timeout_ms, or the server cannot be reached) and will again without any
// change on the caller's side: try again later. HTTP 503 `Unavailable` with Retry-After.
class UnavailableError : public StorageError {
 public:
  // When nothing better is known (a full disk waits for an operator).
  static constexpr int kDefaultRetryAfterS = 10;

  explicit UnavailableError(const std::string& what, int retry_after_s = kDefaultRetryAfterS)
      : StorageError(what), retry_after_s_(retry_after_s) {}
  // How long the condition is likely to last, in whole seconds (at least 1): the REST API's
  // Retry-After.
  int retry_after_s() const { return retry_after_s_; }

 private:
  int retry_after_s_;
};

}  // namespace brandhooks
