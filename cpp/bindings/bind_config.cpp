// brandhooks.Config: the C++ struct, field by field. Config.FIELDS lists each field with its
// default and help, so the CLI derives one flag and one BRANDHOOKS_<NAME> variable per field.
#include <pybind11/stl.h>

#include "brandhooks/config.hpp"
#include "bindings.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

namespace {
template <class T>
void field(py::class_<Config>& cls, py::list& fields, const char* name, T Config::*member,
           const char* help) {
  cls.def_readwrite(name, member, help);
  fields.append(py::make_tuple(name, Config{}.*member, help));
}
}  // namespace

void bind_config(py::module_& m) {
  py::class_<Config> cls(m, "Config", "Configuration of a Hub (one field per setting).");
  py::list fields;
  field(cls, fields, "db", &Config::db, "SQLite database file (\":memory:\" for a private one)");
  field(cls, fields, "synchronous", &Config::synchronous,
        "SQLite durability: normal (survives kill -9) or full (also survives power loss)");
  field(cls, fields, "busy_timeout_ms", &Config::busy_timeout_ms,
        "how long a writer waits for another process's database lock, in ms");
  cls.attr("FIELDS") = py::tuple(fields);

  cls.def(py::init([](const py::kwargs& kwargs) {
            Config config;
            py::object self = py::cast(&config, py::return_value_policy::reference);
            for (auto [key, value] : kwargs) {
              std::string name = py::cast<std::string>(key);
              if (!py::hasattr(py::type::of(self), name.c_str()) || name == "FIELDS") {
                throw py::type_error("Config has no field '" + name + "'");
              }
              self.attr(key) = value;
            }
            return config;
          }),
          "Config(**fields): unspecified fields keep their defaults.");
  cls.def("__repr__", [fields](const Config& config) {
    py::object self = py::cast(config);
    std::string out = "Config(";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::string name = py::cast<std::string>(fields[i].cast<py::tuple>()[0]);
      out += (i ? ", " : "") + name + "=" + py::repr(self.attr(name.c_str())).cast<std::string>();
    }
    return out + ")";
  });
}

}  // namespace brandhooks::bindings
