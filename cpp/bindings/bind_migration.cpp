// Migration: `brandhooks migrate` steps it batch by batch (the GIL released) to draw progress.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "brandhooks/migration.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

void bind_migration(py::module_& m) {
  using release_gil = py::call_guard<py::gil_scoped_release>;
  py::class_<Migration>(m, "Migration",
                        "Moves a brandhooks SQLite database to PostgreSQL (or to a new SQLite file), batch by "
                        "batch; counts() compares both afterwards.")
      .def(py::init<std::string, std::string, std::size_t, std::size_t>(), py::arg("source"), py::arg("target"),
           py::arg("batch_rows") = 1000, py::arg("batch_bytes") = 16u << 20, release_gil())
      .def_property_readonly("total_rows", &Migration::total_rows, "Rows to move in all.")
      .def_property_readonly("moved_rows", &Migration::moved_rows, "Rows moved so far.")
      .def_property_readonly("done", &Migration::done)
      .def("step", &Migration::step, release_gil(),
           "Moves the next batch; False once everything has moved and the target is finished.")
      .def(
          "counts",
          [](Migration& migration) {
            std::vector<Migration::TableCount> counts;
            {
              py::gil_scoped_release release;
              counts = migration.counts();
            }
            py::list out;
            for (const auto& c : counts) out.append(py::make_tuple(c.table, c.source, c.target));
            return out;
          },
          "Rows per table in both databases: a list of (table, source, target).");
}

}  // namespace brandhooks::bindings
