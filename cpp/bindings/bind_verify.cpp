// Receiver helpers: signature checks in constant time, done by the core.
#include "brandhooks/signer.hpp"

#include <pybind11/stl.h>

#include <chrono>

#include "bindings.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

void bind_verify(py::module_& m) {
  m.def(
      "verify_simple",
      [](std::string_view key, std::string_view body, std::string_view signature) {
        return verify_simple(key, body, signature);
      },
      py::arg("key"), py::arg("body"), py::arg("signature"),
      "True when `signature` is the hex HMAC-SHA256 of `body` under `key` (hex or whsec_).");
  m.def(
      "verify_standard",
      [](std::string_view key, std::string_view body, std::string_view msg_id, std::string_view timestamp,
         std::string_view signatures, std::optional<std::int64_t> now, std::int64_t tolerance) {
        std::int64_t now_s = now.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
        return verify_standard(key, body, msg_id, timestamp, signatures, now_s, tolerance);
      },
      py::arg("key"), py::arg("body"), py::arg("msg_id"), py::arg("timestamp"), py::arg("signatures"),
      py::arg("now") = std::nullopt, py::arg("tolerance") = 300,
      "True when one v1 signature matches and the timestamp is within `tolerance` seconds.");
  m.def("standard_webhooks_secret", &standard_webhooks_secret, py::arg("key"),
        "The whsec_ secret a Standard Webhooks library expects for a webhook key.");
}

}  // namespace brandhooks::bindings
