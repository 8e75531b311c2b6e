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
  py::register_exception<UnavailableError>(m, "UnavailableError", storage);
}

}  // namespace brandhooks::bindings
