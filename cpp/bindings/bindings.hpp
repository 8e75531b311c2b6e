#pragma once
// One function per area; module.cpp calls them in order.
#include <pybind11/pybind11.h>

namespace brandhooks::bindings {

void bind_errors(pybind11::module_& m);
void bind_config(pybind11::module_& m);
void bind_hub(pybind11::module_& m);
void bind_migration(pybind11::module_& m);
void bind_verify(pybind11::module_& m);

}  // namespace brandhooks::bindings
