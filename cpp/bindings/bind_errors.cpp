// The C++ error hierarchy as Python exceptions: one translation, here.
#include "brandhooks/errors.hpp"

#include "bindings.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

void bind_errors(py::module_& m) {
  // Translators run newest first, so the base class is registered before its subclasses.
  auto& base = py::register_exception<Error>(m, "BrandhooksError", PyExc_Exception);
  auto& validation = py::register_exception<ValidationError>(m, "ValidationError", base);
  py::register_exception<BadRequestError>(m, "BadRequestError", validation);
  py::register_exception<NotFoundError>(m, "NotFoundError", base);
  py::register_exception<ConflictError>(m, "ConflictError", base);
  py::register_exception<UnauthorizedError>(m, "UnauthorizedError", base);
  py::register_exception<ForbiddenError>(m, "ForbiddenError", base);
  auto& storage = py::register_exception<StorageError>(m, "StorageError", base);
  // UnavailableError carries how long to wait (its `retry_after` attribute: the REST API's
  // Retry-After), so it is raised as an instance with that attribute set.
  static py::exception<UnavailableError> unavailable(m, "UnavailableError", storage);
  unavailable.attr("retry_after") = UnavailableError::kDefaultRetryAfterS;
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const UnavailableError& e) {
      py::object error = py::reinterpret_borrow<py::object>(unavailable)(e.what());
      error.attr("retry_after") = e.retry_after_s();
      PyErr_SetObject(unavailable.ptr(), error.ptr());
    }
  });
}

}  // namespace brandhooks::bindings
