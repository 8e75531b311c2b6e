// brandhooks.Hub and the records it returns. Every Hub method releases the GIL: arguments
// are converted before the call, results after it.
#include <pybind11/stl.h>

#include "brandhooks/hub.hpp"
#include "bindings.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

namespace {
using release_gil = py::call_guard<py::gil_scoped_release>;

double seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }

std::optional<double> seconds(const std::optional<std::int64_t>& micros) {
  if (!micros) return std::nullopt;
  return seconds(*micros);
}

void bind_records(py::module_& m) {
  py::class_<Webhook>(m, "Webhook", "A registered webhook (times in Unix seconds).")
      .def_readonly("id", &Webhook::id)
      .def_property_readonly("created_at", [](const Webhook& w) { return seconds(w.created_at); })
      .def_property_readonly("updated_at", [](const Webhook& w) { return seconds(w.updated_at); })
      .def_property_readonly("deleted_at", [](const Webhook& w) { return seconds(w.deleted_at); })
      .def_readonly("brand", &Webhook::brand)
      .def_readonly("topic", &Webhook::topic)
      .def_readonly("url", &Webhook::url)
      .def_readonly("key", &Webhook::key)
      .def_readonly("tags", &Webhook::tags)
      .def("to_json", [](const Webhook& w) { return to_json(w); },
           "The webhook as the REST contract shows it (fields in contract order).")
      .def("to_dict",
           [](const Webhook& w) { return py::module_::import("json").attr("loads")(to_json(w)); },
           "to_json() as a dict (insertion order = contract order).")
      .def("__repr__", [](const Webhook& w) {
        return "<Webhook " + w.id + " " + w.topic + " " + w.url + ">";
      });

  py::class_<Page<Webhook>>(m, "WebhookPage", "One page of webhooks and the total matching.")
      .def_readonly("items", &Page<Webhook>::items)
      .def_readonly("total", &Page<Webhook>::total)
      .def("__len__", [](const Page<Webhook>& p) { return p.items.size(); })
      .def("__iter__", [](const Page<Webhook>& p) { return py::make_iterator(p.items.begin(), p.items.end()); },
           py::keep_alive<0, 1>());

  py::class_<Brand>(m, "Brand", "A brand (tenant) and its parent in the brand tree.")
      .def_readonly("id", &Brand::id)
      .def_readonly("parent", &Brand::parent)
      .def("__repr__", [](const Brand& b) { return "<Brand " + b.id + " parent=" + b.parent.value_or("None") + ">"; });

  py::class_<TokenInfo>(m, "TokenInfo", "An API token as listed (never its secret).")
      .def_readonly("id", &TokenInfo::id)
      .def_readonly("brand", &TokenInfo::brand)
      .def_readonly("label", &TokenInfo::label)
      .def_property_readonly("created_at", [](const TokenInfo& t) { return seconds(t.created_at); })
      .def_property_readonly("is_admin", [](const TokenInfo& t) { return !t.brand; })
      .def("__repr__", [](const TokenInfo& t) {
        return "<TokenInfo " + t.id + " " + (t.brand ? "brand " + *t.brand : std::string("admin")) + ">";
      });

  py::class_<IssuedToken>(m, "IssuedToken", "A new token; `secret` is shown only once.")
      .def_readonly("info", &IssuedToken::info)
      .def_readonly("secret", &IssuedToken::secret)
      .def("__repr__", [](const IssuedToken& t) { return "<IssuedToken " + t.info.id + ">"; });

  py::class_<Principal>(m, "Principal", "Who a bearer token speaks for.")
      .def_readonly("token_id", &Principal::token_id)
      .def_readonly("brand", &Principal::brand)
      .def_property_readonly("is_admin", &Principal::is_admin);
}
}  // namespace

void bind_hub(py::module_& m) {
  bind_records(m);
  m.attr("TOPICS") = [] {
    py::list topics;
    for (auto topic : kTopics) topics.append(std::string(topic));
    return py::tuple(topics);
  }();

  py::class_<Hub>(m, "Hub", "The brandhooks core: webhooks, brands, tokens.")
      .def(py::init<Config>(), py::arg("config"), release_gil())
      .def(py::init([](const std::string& db) {
             Config config;
             config.db = db;
             py::gil_scoped_release release;
             return std::make_unique<Hub>(config);
           }),
           py::arg("db"))
      .def_property_readonly("config", &Hub::config)
      .def("create_webhook", &Hub::create_webhook, py::arg("brand"), py::arg("topic"),
           py::arg("url"), py::arg("tags") = std::nullopt, release_gil())
      .def(
          "list_webhooks",
          [](Hub& hub, std::string brand, std::optional<std::string> topic, std::int64_t start,
             std::optional<std::int64_t> limit) {
            return hub.list_webhooks({std::move(brand), std::move(topic), start, limit});
          },
          py::arg("brand"), py::arg("topic") = std::nullopt, py::arg("start") = 0,
          py::arg("limit") = std::nullopt, release_gil())
      .def("get_webhook", &Hub::get_webhook, py::arg("brand"), py::arg("webhook_id"), release_gil())
      .def("delete_webhook", &Hub::delete_webhook, py::arg("brand"), py::arg("webhook_id"),
           release_gil())
      .def("set_brand_parent", &Hub::set_brand_parent, py::arg("brand"), py::arg("parent"),
           release_gil())
      .def("brand_parent", &Hub::brand_parent, py::arg("brand"), release_gil())
      .def("create_token", &Hub::create_token, py::arg("brand") = std::nullopt,
           py::arg("label") = "", release_gil())
      .def("ensure_admin_token", &Hub::ensure_admin_token, py::arg("secret"),
           py::arg("label") = "", release_gil())
      .def("list_tokens", &Hub::list_tokens, release_gil())
      .def("revoke_token", &Hub::revoke_token, py::arg("token_id"), release_gil())
      .def("has_tokens", &Hub::has_tokens, release_gil())
      .def("authenticate", &Hub::authenticate, py::arg("secret"), release_gil())
      .def("authorize", &Hub::authorize, py::arg("secret"), py::arg("brand"), release_gil())
      .def("authorize_admin", &Hub::authorize_admin, py::arg("secret"), release_gil());
}

}  // namespace brandhooks::bindings
