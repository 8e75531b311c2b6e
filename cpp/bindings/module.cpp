// brandhooks._core — the table of contents of the Python bindings.
// Rules: convert arguments, release the GIL, call the Hub; never call Python from the core.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "brandhooks compiled core (C++): storage, signing, delivery";
  brandhooks::bindings::bind_errors(m);  // exceptions first: the others raise them
  brandhooks::bindings::bind_config(m);
  brandhooks::bindings::bind_hub(m);
  brandhooks::bindings::bind_migration(m);
  brandhooks::bindings::bind_verify(m);
}
