// brandhooks.Hub and the records it returns. Every Hub method releases the GIL: arguments
// are converted before the call, results after it.
#include <pybind11/stl.h>

#include <cmath>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include "brandhooks/hub.hpp"
#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace brandhooks::bindings {

namespace {
using release_gil = py::call_guard<py::gil_scoped_release>;

double seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }

std::optional<double> seconds(const std::optional<std::int64_t>& micros) {
  if (!micros) return std::nullopt;
  return seconds(*micros);
}

// The counts Stats and Gauges share (StoreCounts), as read-only attributes.
template <class T>
void def_store_counts(py::class_<T>& cls) {
  static constexpr std::pair<const char*, std::int64_t StoreCounts::*> kCounts[] = {
      {"webhooks", &StoreCounts::webhooks}, {"disabled_webhooks", &StoreCounts::disabled_webhooks},
      {"pending", &StoreCounts::pending},   {"delivered", &StoreCounts::delivered},
      {"failed", &StoreCounts::failed},     {"cancelled", &StoreCounts::cancelled},
      {"due_now", &StoreCounts::due_now}};
  for (auto [name, member] : kCounts) cls.def_readonly(name, member);
  cls.def_property_readonly("oldest_due_at", [](const T& counts) { return seconds(counts.oldest_due_at); });
}

// A record as a dict: the core's JSON (record_fields' names, in order) parsed by Python, so
// that the API answers exactly the bytes C++ users get from to_json.
template <class Record>
py::object record_dict(const Record& record) {
  return py::module_::import("json").attr("loads")(to_json(record));
}

py::list record_fields_list(std::string_view record) {
  py::list fields;
  for (const FieldSpec& f : record_fields(record)) {
    py::list values;
    for (auto value : f.values) values.append(std::string(value));
    fields.append(py::dict("name"_a = std::string(f.name), "type"_a = std::string(f.type),
                           "nullable"_a = f.nullable, "description"_a = std::string(f.description),
                           "values"_a = py::tuple(values)));
  }
  return fields;
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
      .def_readonly("ordered", &Webhook::ordered)
      .def_readonly("rate_limit", &Webhook::rate_limit)
      .def_readonly("headers", &Webhook::headers)
      .def_property_readonly("disabled_at", [](const Webhook& w) { return seconds(w.disabled_at); })
      .def_readonly("disabled_reason", &Webhook::disabled_reason)
      .def_property_readonly("failing_since", [](const Webhook& w) { return seconds(w.failing_since); })
      .def_property_readonly("last_success_at", [](const Webhook& w) { return seconds(w.last_success_at); })
      .def("to_json", [](const Webhook& w) { return to_json(w); },
           "The webhook as the REST contract shows it (fields in contract order).")
      .def("to_dict", &record_dict<Webhook>, "to_json() as a dict (insertion order = contract order).")
      .def("state_dict", [](const Webhook& w) { return py::module_::import("json").attr("loads")(state_json(w)); },
           "Whether delivery is enabled and why not, its failure streak and last success, as the API answers it "
           "(record \"webhook_state\").")
      .def("__repr__", [](const Webhook& w) {
        return "<Webhook " + w.id + " " + w.topic + " " + redact_url(w.url) + ">";
      });

  py::class_<PublishResult>(m, "PublishResult", "An accepted event: its id and how many deliveries it made.")
      .def_readonly("event_id", &PublishResult::event_id)
      .def_readonly("deliveries", &PublishResult::deliveries)
      .def("to_json", py::overload_cast<const PublishResult&>(&to_json), "The answer's JSON text, as the API sends it.")
      .def("to_dict", &record_dict<PublishResult>, "As the API answers a publish: {\"id\", \"deliveries\"}.")
      .def("__repr__", [](const PublishResult& r) {
        return "<PublishResult " + r.event_id + " deliveries=" + std::to_string(r.deliveries) + ">";
      });

  py::class_<Attempt>(m, "Attempt", "One try at a delivery (times in Unix seconds).")
      .def_readonly("number", &Attempt::number)
      .def_property_readonly("started_at", [](const Attempt& a) { return seconds(a.started_at); })
      .def_property_readonly("duration_ms", [](const Attempt& a) { return static_cast<double>(a.duration_us) / 1e3; })
      .def_readonly("status", &Attempt::status)
      .def_property_readonly("error", [](const Attempt& a) -> std::optional<std::string> {
        if (a.error == AttemptError::none) return std::nullopt;
        return std::string(to_string(a.error));
      })
      .def_readonly("detail", &Attempt::detail)
      .def_property_readonly("response", [](const Attempt& a) { return py::bytes(a.response); })
      .def("__repr__", [](const Attempt& a) {
        return "<Attempt " + std::to_string(a.number) + " " +
               (a.error == AttemptError::none ? std::to_string(a.status.value_or(0)) : std::string(to_string(a.error))) +
               ">";
      });

  py::class_<Delivery>(m, "Delivery", "One event for one webhook, with its attempts.")
      .def_readonly("id", &Delivery::id)
      .def_readonly("event_id", &Delivery::event_id)
      .def_readonly("webhook_id", &Delivery::webhook_id)
      .def_readonly("brand", &Delivery::brand)
      .def_readonly("topic", &Delivery::topic)
      .def_readonly("event", &Delivery::event)
      .def_property_readonly("state", [](const Delivery& d) { return std::string(to_string(d.state)); })
      .def_readonly("attempt_count", &Delivery::attempt_count)
      .def_property_readonly("created_at", [](const Delivery& d) { return seconds(d.created_at); })
      .def_property_readonly("updated_at", [](const Delivery& d) { return seconds(d.updated_at); })
      .def_property_readonly("next_attempt_at", [](const Delivery& d) { return seconds(d.next_attempt_at); })
      .def_readonly("attempts", &Delivery::attempts)
      .def("to_json", [](const Delivery& d) { return to_json(d); })
      .def("to_dict", &record_dict<Delivery>)
      .def("__repr__", [](const Delivery& d) { return "<Delivery " + d.id + " " + std::string(to_string(d.state)) + ">"; });

  py::class_<RecoverResult>(m, "RecoverResult", "Failed deliveries queued again.")
      .def_readonly("queued", &RecoverResult::queued)
      .def_readonly("delivery_ids", &RecoverResult::delivery_ids)
      .def("to_json", py::overload_cast<const RecoverResult&>(&to_json))
      .def("to_dict", &record_dict<RecoverResult>, "As the API answers a recover: {\"queued\", \"deliveries\"}.")
      .def("__repr__", [](const RecoverResult& r) { return "<RecoverResult queued=" + std::to_string(r.queued) + ">"; });

  py::class_<Stats> stats(m, "Stats", "Counts of the store's records, and the queue.");
  def_store_counts(stats);
  stats.def_readonly("events", &Stats::events)
      .def_readonly("node", &Stats::node, "the node that answered (Config.node_id)")
      .def("to_json", py::overload_cast<const Stats&>(&to_json))
      .def("to_dict", &record_dict<Stats>);

  py::class_<FailingWebhook>(m, "FailingWebhook", "The live, enabled webhook failing the longest (Gauges).")
      .def_readonly("id", &FailingWebhook::id)
      .def_readonly("brand", &FailingWebhook::brand)
      .def_property_readonly("since", [](const FailingWebhook& f) { return seconds(f.since); },
                             "the first failure after its last success, Unix seconds");
  py::class_<Gauges> gauges(m, "Gauges",
                            "What a scrape of /metrics reads from the store (Hub.gauges), at a flat cost: "
                            "due_now is counted up to DUE_COUNT_LIMIT.");
  def_store_counts(gauges);
  gauges.def_readonly("longest_failing", &Gauges::longest_failing);
  m.attr("DUE_COUNT_LIMIT") = kDueCountLimit;

  py::class_<Page<Delivery>>(m, "DeliveryPage", "One page of deliveries and the total matching.")
      .def_readonly("items", &Page<Delivery>::items)
      .def_readonly("total", &Page<Delivery>::total)
      .def("__len__", [](const Page<Delivery>& p) { return p.items.size(); })
      .def("__iter__", [](const Page<Delivery>& p) { return py::make_iterator(p.items.begin(), p.items.end()); },
           py::keep_alive<0, 1>());

  py::class_<Page<Webhook>>(m, "WebhookPage", "One page of webhooks and the total matching.")
      .def_readonly("items", &Page<Webhook>::items)
      .def_readonly("total", &Page<Webhook>::total)
      .def("__len__", [](const Page<Webhook>& p) { return p.items.size(); })
      .def("__iter__", [](const Page<Webhook>& p) { return py::make_iterator(p.items.begin(), p.items.end()); },
           py::keep_alive<0, 1>());

  py::class_<MinuteStats>(m, "MinuteStats", "Attempts of one minute by outcome (Hub.delivery_stats).")
      .def_property_readonly("at", [](const MinuteStats& s) { return s.at / 1'000'000; }, "the minute's start, Unix seconds")
      .def_property_readonly("succeeded", [](const MinuteStats& s) { return s.counts.succeeded; })
      .def_property_readonly("failed", [](const MinuteStats& s) { return s.counts.failed; })
      .def_property_readonly("errors", [](const MinuteStats& s) { return s.counts.errors; });
  py::class_<WebhookStats>(m, "WebhookStats", "A webhook's attempts in the window, with p50/p99 durations (ms).")
      .def_readonly("webhook", &WebhookStats::webhook)
      .def_property_readonly("attempts", [](const WebhookStats& s) { return s.counts.total(); })
      .def_property_readonly("succeeded", [](const WebhookStats& s) { return s.counts.succeeded; })
      .def_property_readonly("failed", [](const WebhookStats& s) { return s.counts.failed; })
      .def_property_readonly("errors", [](const WebhookStats& s) { return s.counts.errors; })
      .def_readonly("p50_ms", &WebhookStats::p50_ms)
      .def_readonly("p99_ms", &WebhookStats::p99_ms);
  py::class_<DeliveryStats>(m, "DeliveryStats",
                            "Delivery attempts of a brand's live webhooks per minute and per webhook.")
      .def_property_readonly("since", [](const DeliveryStats& s) { return s.since / 1'000'000; },
                             "start of the first minute, Unix seconds")
      .def_property_readonly("until", [](const DeliveryStats& s) { return s.until / 1'000'000; },
                             "end of the current minute, Unix seconds")
      .def_readonly("minutes", &DeliveryStats::minutes, "minutes with attempts, oldest first")
      .def_readonly("webhooks", &DeliveryStats::webhooks, "every live webhook of the brand, in listing order")
      .def("to_json", py::overload_cast<const DeliveryStats&>(&to_json))
      .def("to_dict", &record_dict<DeliveryStats>, "As the API answers GET /brands/{id}/delivery-stats.");
  py::class_<Brand>(m, "Brand", "A brand (tenant) and its parent in the brand tree.")
      .def_readonly("id", &Brand::id)
      .def_readonly("parent", &Brand::parent)
      .def("to_json", py::overload_cast<const Brand&>(&to_json))
      .def("to_dict", &record_dict<Brand>, "As the API answers it: {\"id\", \"parent\"}.")
      .def("__repr__", [](const Brand& b) { return "<Brand " + b.id + " parent=" + b.parent.value_or("None") + ">"; });

  py::class_<TokenInfo>(m, "TokenInfo", "An API token as listed (never its secret).")
      .def_readonly("id", &TokenInfo::id)
      .def_readonly("brand", &TokenInfo::brand)
      .def_readonly("label", &TokenInfo::label)
      .def_property_readonly("created_at", [](const TokenInfo& t) { return seconds(t.created_at); })
      .def_property_readonly("expires_at", [](const TokenInfo& t) { return seconds(t.expires_at); },
                             "Unix seconds from which the token is refused; None: never.")
      .def_property_readonly("is_admin", [](const TokenInfo& t) { return !t.brand; })
      .def("to_json", py::overload_cast<const TokenInfo&>(&to_json))
      .def("to_dict", &record_dict<TokenInfo>,
           "As the API lists it: {\"id\", \"brand\", \"label\", \"created_at\", \"expires_at\"}.")
      .def("__repr__", [](const TokenInfo& t) {
        return "<TokenInfo " + t.id + " " + (t.brand ? "brand " + *t.brand : std::string("admin")) + ">";
      });

  py::class_<IssuedToken>(m, "IssuedToken", "A new token; `secret` is shown only once.")
      .def_readonly("info", &IssuedToken::info)
      .def_readonly("secret", &IssuedToken::secret)
      .def("to_json", py::overload_cast<const IssuedToken&>(&to_json))
      .def("to_dict", &record_dict<IssuedToken>,
           "As the API answers a creation: the listed fields and \"token\", the secret.")
      .def("__repr__", [](const IssuedToken& t) { return "<IssuedToken " + t.info.id + ">"; });

  py::class_<Principal>(m, "Principal", "Who a bearer token speaks for.")
      .def_readonly("token_id", &Principal::token_id)
      .def_readonly("brand", &Principal::brand)
      .def_property_readonly("expires_at", [](const Principal& p) { return seconds(p.expires_at); },
                             "Unix seconds from which the token is refused; None: never.")
      .def_property_readonly("is_admin", &Principal::is_admin);

  py::class_<PortalLink>(m, "PortalLink", "A link that opens the portal signed in; its url holds a secret.")
      .def_readonly("url", &PortalLink::url)
      .def_property_readonly("expires_at", [](const PortalLink& l) { return seconds(l.expires_at); })
      .def_readonly("brand", &PortalLink::brand)
      .def_readonly("token_id", &PortalLink::token_id)
      .def("to_json", py::overload_cast<const PortalLink&>(&to_json))
      .def("to_dict", &record_dict<PortalLink>, "As the API answers it: {\"url\", \"expires_at\", \"brand\", \"token_id\"}.")
      .def("__repr__", [](const PortalLink& l) { return "<PortalLink " + l.token_id + " brand " + l.brand + ">"; });
}

// The trace context of a publish's traceparent and tracestate arguments (none without a
// traceparent; the core checks it).
std::optional<TraceContext> trace_context(const std::optional<std::string>& traceparent,
                                          const std::optional<std::string>& tracestate) {
  if (!traceparent) return std::nullopt;
  return TraceContext{*traceparent, tracestate.value_or("")};
}

void bind_attempt_span(py::module_& m) {
  py::class_<AttemptSpan>(m, "AttemptSpan",
                          "A finished attempt of a traced event as a span (Hub.take_attempt_spans): ids in "
                          "lowercase hex, times in Unix seconds.")
      .def_readonly("trace_id", &AttemptSpan::trace_id)
      .def_readonly("span_id", &AttemptSpan::span_id, "the attempt's own span: the receiver's parent")
      .def_readonly("parent_span_id", &AttemptSpan::parent_span_id, "the publisher's span")
      .def_readonly("trace_flags", &AttemptSpan::trace_flags, "as the publisher sent them (1: sampled)")
      .def_readonly("tracestate", &AttemptSpan::tracestate)
      .def_readonly("delivery_id", &AttemptSpan::delivery_id)
      .def_readonly("webhook_id", &AttemptSpan::webhook_id)
      .def_readonly("brand", &AttemptSpan::brand)
      .def_readonly("attempt", &AttemptSpan::attempt, "number, started_at, duration_ms, status or error, detail")
      .def_property_readonly("state", [](const AttemptSpan& s) { return std::string(to_string(s.state)); },
                             "the delivery's state after the attempt: delivered, pending (a retry) or failed")
      .def("__repr__", [](const AttemptSpan& s) {
        return "<AttemptSpan " + s.trace_id + "/" + s.span_id + " delivery " + s.delivery_id + " attempt " +
               std::to_string(s.attempt.number) + ">";
      });
}

// A payload given as a str is used as is; anything else goes through json.dumps.
std::string payload_text(const py::handle& payload) {
  if (py::isinstance<py::str>(payload)) return payload.cast<std::string>();
  return py::module_::import("json").attr("dumps")(payload).cast<std::string>();
}

EventInput event_input(const py::handle& item) {
  if (py::isinstance<py::dict>(item)) {
    auto d = item.cast<py::dict>();
    for (const char* key : {"brand", "topic", "event", "payload"}) {
      if (!d.contains(key)) throw py::key_error(std::string("event is missing '") + key + "'");
    }
    std::optional<std::vector<std::string>> tags;
    if (d.contains("tags") && !d["tags"].is_none()) tags = d["tags"].cast<std::vector<std::string>>();
    std::optional<std::string> key;
    if (d.contains("idempotency_key") && !d["idempotency_key"].is_none()) key = d["idempotency_key"].cast<std::string>();
    auto optional_text = [&](const char* name) -> std::optional<std::string> {
      if (!d.contains(name) || d[name].is_none()) return std::nullopt;
      return d[name].cast<std::string>();
    };
    return {d["brand"].cast<std::string>(), d["topic"].cast<std::string>(), d["event"].cast<std::string>(),
            payload_text(d["payload"]), tags, key, trace_context(optional_text("traceparent"), optional_text("tracestate"))};
  }
  auto t = item.cast<py::sequence>();
  if (t.size() != 4 && t.size() != 5) throw py::value_error("an event is (brand, topic, event, payload[, tags])");
  std::optional<std::vector<std::string>> tags;
  if (t.size() == 5 && !t[4].is_none()) tags = t[4].cast<std::vector<std::string>>();
  return {t[0].cast<std::string>(), t[1].cast<std::string>(), t[2].cast<std::string>(), payload_text(t[3]), tags,
          std::nullopt};
}

py::dict histogram_dict(const Histogram& h) {
  auto snap = h.snapshot();
  py::list buckets;
  for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
    double bound = i < Histogram::kBounds.size() ? Histogram::kBounds[i] : INFINITY;
    buckets.append(py::make_tuple(bound, snap.cumulative[i]));
  }
  py::dict d;
  d["buckets"] = buckets;
  d["sum"] = snap.sum;
  d["count"] = snap.count;
  return d;
}

py::dict metrics_dict(const Metrics& m) {
  py::dict d;
  d["events_published"] = m.events_published.load();
  d["deliveries_created"] = m.deliveries_created.load();
  d["attempts"] = m.attempts.load();
  d["deliveries_delivered"] = m.deliveries_delivered.load();
  d["deliveries_failed"] = m.deliveries_failed.load();
  d["retries_scheduled"] = m.retries_scheduled.load();
  d["webhooks_disabled"] = m.webhooks_disabled.load();
  d["deliveries_pruned"] = m.deliveries_pruned.load();
  d["leases_taken_over"] = m.leases_taken_over.snapshot();  // per node that held them
  d["leases_lost"] = m.leases_lost.load();
  d["leases_taken_back"] = m.leases_taken_back.load();
  d["outcomes_already_recorded"] = m.outcomes_already_recorded.load();
  d["attempt_spans_dropped"] = m.attempt_spans_dropped.load();
  d["attempt_seconds"] = histogram_dict(m.attempt_seconds);
  d["publish_to_delivered_seconds"] = histogram_dict(m.publish_to_delivered_seconds);
  return d;
}

// The Python exception that `error` becomes when raised through the bindings (the one
// translation in bind_errors.cpp), as an object: for answers that carry an error.
py::object as_exception(const std::exception_ptr& error) {
  py::cpp_function raise([error] { std::rethrow_exception(error); });
  try {
    raise();
  } catch (py::error_already_set& e) {
    return e.value();
  }
  throw std::logic_error("as_exception: nothing was raised");
}

// Python drops a Hub (garbage, `del`, interpreter exit) with the GIL held; stopping the
// dispatcher can wait for in-flight attempts (up to the request timeout), so the GIL is
// released for it, as close() does.
struct DeleteWithoutGil {
  void operator()(Hub* hub) const {
    py::gil_scoped_release release;
    delete hub;
  }
};
using HubHolder = std::unique_ptr<Hub, DeleteWithoutGil>;

WebhookPatch webhook_patch(const py::kwargs& changes) {
  WebhookPatch patch;
  for (auto [key, value] : changes) {
    std::string name = key.cast<std::string>();
    if (name == "url") {
      patch.url = value.cast<std::string>();
    } else if (name == "topic") {
      patch.topic = value.cast<std::string>();
    } else if (name == "tags") {
      patch.set_tags = true;
      if (!value.is_none()) patch.tags = value.cast<std::vector<std::string>>();
    } else if (name == "enabled") {
      patch.enabled = value.cast<bool>();
    } else if (name == "ordered") {
      patch.ordered = value.cast<bool>();
    } else if (name == "rate_limit") {
      patch.set_rate_limit = true;
      if (!value.is_none()) patch.rate_limit = value.cast<std::int64_t>();
    } else if (name == "headers") {
      patch.headers = value.is_none() ? Headers{} : value.cast<Headers>();
    } else {
      throw py::type_error("update_webhook() has no field '" + name + "'");
    }
  }
  return patch;
}
}  // namespace

void bind_hub(py::module_& m) {
  bind_records(m);
  bind_attempt_span(m);
  m.def("record_names", [] {
    py::list names;
    for (auto name : record_names()) names.append(std::string(name));
    return py::tuple(names);
  }, "The records the API answers with, as named by record_fields().");
  m.def("record_fields", [](const std::string& record) {
    try {
      return record_fields_list(record);
    } catch (const std::out_of_range& e) {
      throw py::key_error(e.what());
    }
  }, py::arg("record"),
        "A record's fields in the order its JSON has them: dicts of name, type (string, uuid, integer, "
        "number, time, boolean, string[] or <record>[]), nullable, description and values (the allowed "
        "ones when the set is closed). The one definition of each record's shape.");
  m.attr("TOPICS") = [] {
    py::list topics;
    for (auto topic : kTopics) topics.append(std::string(topic));
    return py::tuple(topics);
  }();

  py::class_<Hub, HubHolder>(m, "Hub", "The brandhooks core: webhooks, brands, tokens.")
      .def(py::init<Config>(), py::arg("config"), release_gil())
      .def(py::init([](const std::string& db, const py::kwargs& settings) {
             // Hub("file.db", deliver=True, ...): the keywords are Config fields.
             auto config = py::module_::import("brandhooks._core").attr("Config")(**settings).cast<Config>();
             config.db = db;
             py::gil_scoped_release release;
             return HubHolder(new Hub(config));
           }),
           py::arg("db"))
      .def_property_readonly("config", &Hub::config)
      .def(
          "create_webhook",
          [](Hub& hub, const std::string& brand, const std::string& topic, const std::string& url,
             const std::optional<std::vector<std::string>>& tags, bool ordered,
             std::optional<std::int64_t> rate_limit, std::optional<Headers> headers) {
            return hub.create_webhook(brand, topic, url, tags, {ordered, rate_limit, headers.value_or(Headers{})});
          },
          py::arg("brand"), py::arg("topic"), py::arg("url"), py::arg("tags") = std::nullopt, py::kw_only(),
          py::arg("ordered") = false, py::arg("rate_limit") = std::nullopt, py::arg("headers") = std::nullopt,
          release_gil(),
          "Registers url for topic events of brand; ordered, rate_limit (deliveries per second) and "
          "headers (sent with every attempt) are its delivery controls.")
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
      .def("brand_descendants", &Hub::brand_descendants, py::arg("brand"), release_gil(),
           "Every brand below brand in the tree (not itself), breadth first.")
      .def("create_token", &Hub::create_token, py::arg("brand") = std::nullopt,
           py::arg("label") = "", py::kw_only(), py::arg("expires_in") = std::nullopt, release_gil(),
           "A new token (admin when brand is None); expires_in: seconds (60 to 2592000) until it is "
           "refused, None: never. The secret is in this result only.")
      .def("create_portal_link", &Hub::create_portal_link, py::arg("secret"), py::arg("brand"),
           py::arg("expires_in") = Hub::kDefaultLinkLifetime, py::arg("request_base") = "", release_gil(),
           "authorize(secret, brand), then a new brand token for brand that expires after expires_in "
           "seconds (60 to 86400) or with the caller's token, whichever comes first; its url is "
           "config.public_url (else request_base) + '/portal#token=<secret>'.")
      .def("current_token", &Hub::current_token, py::arg("secret"), release_gil(),
           "The token secret is; UnauthorizedError when it is unknown, revoked or expired.")
      .def("ensure_admin_token", &Hub::ensure_admin_token, py::arg("secret"),
           py::arg("label") = "", release_gil())
      .def("list_tokens", &Hub::list_tokens, release_gil())
      .def("revoke_token", &Hub::revoke_token, py::arg("token_id"), release_gil())
      .def("has_tokens", &Hub::has_tokens, release_gil())
      .def("authenticate", &Hub::authenticate, py::arg("secret"), release_gil())
      .def("authorize", &Hub::authorize, py::arg("secret"), py::arg("brand"), release_gil())
      .def("authorize_admin", &Hub::authorize_admin, py::arg("secret"), release_gil())
      .def("authorize_monitoring", &Hub::authorize_monitoring, py::arg("secret"), release_gil(),
           "authorize_admin; while the database cannot be read, an admin token this Hub verified "
           "before is accepted until its expiry (for /metrics).")
      .def(
          "publish",
          [](Hub& hub, std::string brand, std::string topic, std::string event, const py::object& payload,
             std::optional<std::vector<std::string>> tags, std::optional<std::string> idempotency_key,
             std::optional<std::string> traceparent, std::optional<std::string> tracestate) {
            std::string text = payload_text(payload);
            auto trace = trace_context(traceparent, tracestate);
            py::gil_scoped_release release;
            return hub.publish(brand, topic, event, text, tags, idempotency_key, trace);
          },
          py::arg("brand"), py::arg("topic"), py::arg("event"), py::arg("payload"), py::arg("tags") = std::nullopt,
          py::kw_only(), py::arg("idempotency_key") = std::nullopt, py::arg("traceparent") = std::nullopt,
          py::arg("tracestate") = std::nullopt,
          "Publish an event; payload is a dict (or JSON text of an object). The same idempotency_key "
          "again (per brand, within 24 h) returns the first result and publishes nothing; with "
          "another event it raises ConflictError. traceparent and tracestate (W3C Trace Context, "
          "e.g. the current span's) go with every attempt of its deliveries; an invalid traceparent "
          "is ignored.")
      .def(
          "publish_many",
          [](Hub& hub, const py::iterable& events) {
            std::vector<EventInput> inputs;
            for (const auto& item : events) inputs.push_back(event_input(item));
            py::gil_scoped_release release;
            return hub.publish_many(inputs);
          },
          py::arg("events"),
          "Publish many events in one transaction; each is a dict with brand, topic, event, "
          "payload (and optionally tags, idempotency_key, traceparent, tracestate), or a "
          "(brand, topic, event, payload[, tags]) tuple.")
      .def(
          "publish_json",
          [](Hub& hub, std::string brand, const py::bytes& body, std::optional<std::string> idempotency_key,
             std::optional<std::string> traceparent, std::optional<std::string> tracestate) {
            // A view of the bytes object's buffer: immutable, and kept alive by the caller.
            char* data = nullptr;
            Py_ssize_t size = 0;
            if (PyBytes_AsStringAndSize(body.ptr(), &data, &size) != 0) throw py::error_already_set();
            auto trace = trace_context(traceparent, tracestate);
            std::string answer;
            {
              py::gil_scoped_release release;
              answer = hub.publish_json(brand, std::string_view(data, static_cast<std::size_t>(size)),
                                        idempotency_key, trace);
            }
            return py::bytes(answer);
          },
          py::arg("brand"), py::arg("body"), py::arg("idempotency_key") = std::nullopt, py::kw_only(),
          py::arg("traceparent") = std::nullopt, py::arg("tracestate") = std::nullopt,
          "The REST API's publish: the raw JSON body (one event, or an array of up to 1000) in, "
          "the answer's JSON bytes out; idempotency_key stands for the whole body; traceparent and "
          "tracestate go with every event of it.")
      .def(
          "publish_json_each",
          [](Hub& hub, const std::vector<std::tuple<std::optional<std::string>, std::string, py::bytes,
                                                    std::optional<std::string>, std::optional<std::string>,
                                                    std::optional<std::string>>>& requests) {
            // Views of the bytes objects' buffers: immutable, and kept alive by `requests`.
            std::vector<Hub::JsonPublish> views;
            views.reserve(requests.size());
            for (const auto& [token, brand, body, key, traceparent, tracestate] : requests) {
              char* data = nullptr;
              Py_ssize_t size = 0;
              if (PyBytes_AsStringAndSize(body.ptr(), &data, &size) != 0) throw py::error_already_set();
              views.push_back({brand, std::string_view(data, static_cast<std::size_t>(size)), token, key,
                               trace_context(traceparent, tracestate)});
            }
            std::vector<Hub::JsonAnswer> answers;
            {
              py::gil_scoped_release release;
              answers = hub.publish_json_each(views);
            }
            py::list out;
            for (auto& answer : answers) {
              out.append(answer.error ? as_exception(answer.error) : py::object(py::bytes(answer.json)));
            }
            return out;
          },
          py::arg("requests"),
          "Group commit: [(token or None, brand, body, idempotency key or None, traceparent or None, "
          "tracestate or None), ...] -> one answer per request, in order: the "
          "answer's JSON bytes, or the exception authorize + publish_json would have raised (returned, "
          "not raised).")
      .def(
          "list_deliveries",
          [](Hub& hub, std::string brand, std::string webhook_id, std::optional<std::string> status,
             std::int64_t start, std::int64_t limit) {
            return hub.list_deliveries({std::move(brand), std::move(webhook_id), std::move(status), start, limit});
          },
          py::arg("brand"), py::arg("webhook_id"), py::arg("status") = std::nullopt, py::arg("start") = 0,
          py::arg("limit") = 100, release_gil())
      .def(
          "update_webhook",
          [](Hub& hub, std::string brand, std::string webhook_id, const py::kwargs& changes) {
            WebhookPatch patch = webhook_patch(changes);
            py::gil_scoped_release release;
            return hub.update_webhook(brand, webhook_id, patch);
          },
          py::arg("brand"), py::arg("webhook_id"),
          "Change url=, topic=, tags=, enabled= (True re-enables and clears the failure state), "
          "ordered=, rate_limit= (None: no limit) or headers= (replaces them all; {} or None removes them).")
      .def("rotate_key", &Hub::rotate_key, py::arg("brand"), py::arg("webhook_id"),
           py::arg("grace_seconds") = 24 * 3600, release_gil())
      .def("get_delivery", &Hub::get_delivery, py::arg("brand"), py::arg("delivery_id"), release_gil())
      .def("redeliver", &Hub::redeliver, py::arg("brand"), py::arg("delivery_id"), release_gil())
      .def("recover", &Hub::recover, py::arg("brand"), py::arg("webhook_id"), py::arg("since"),
           py::arg("limit") = 100000, release_gil())
      .def("send_test_event", &Hub::send_test_event, py::arg("brand"), py::arg("webhook_id"), release_gil(),
           "Publish a test event to that webhook only (event \"Test\"); returns its delivery. NotFoundError "
           "for an unknown or deleted webhook, ConflictError when it is disabled.")
      .def("delivery_stats", &Hub::delivery_stats, py::arg("brand"), py::arg("hours") = 24, release_gil(),
           "Attempts of the brand's live webhooks over the last `hours` (1..24), per minute by outcome and "
           "per webhook with p50/p99 durations.")
      .def("prune", &Hub::prune, release_gil())
      .def("stats", &Hub::stats, release_gil())
      .def("gauges", &Hub::gauges, release_gil(),
           "What /metrics reads from the store, at a flat cost; None while the database cannot be "
           "read or cannot take writes (what check_storage raises for).")
      .def("check_storage", &Hub::check_storage, release_gil(),
           "Raise UnavailableError when the disk is (nearly) full, StorageError when the database "
           "cannot take a write now; for health checks.")
      .def("metrics", [](const Hub& hub) { return metrics_dict(hub.metrics()); },
           "The core's counters and histograms since this Hub started.")
      .def("enable_attempt_spans", &Hub::enable_attempt_spans, py::arg("capacity") = Hub::kAttemptSpanCapacity,
           release_gil(),
           "From now on each attempt of a traced event is a span of its own (its traceparent names it as "
           "the receiver's parent), queued (at most capacity; beyond, dropped and counted in "
           "metrics()['attempt_spans_dropped']) for take_attempt_spans. Off by default: attempts then send "
           "the publisher's traceparent unchanged. brandhooks.tracing turns it on.")
      .def("take_attempt_spans", &Hub::take_attempt_spans, py::arg("max") = 1024, py::arg("wait_ms") = 1000,
           release_gil(),
           "Up to max finished attempt spans (AttemptSpan), oldest first, waiting up to wait_ms for the "
           "first (the GIL released); [] when none came.")
      .def("stop_delivery", &Hub::stop_delivery, release_gil(),
           "Stop the dispatcher: in-flight attempts finish or return to the queue.")
      .def("close", &Hub::stop_delivery, release_gil(), "Same as stop_delivery(); the Hub stays usable.")
      .def("__enter__", [](Hub& hub) -> Hub& { return hub; }, py::return_value_policy::reference)
      .def("__exit__", [](Hub& hub, const py::args&) {
        py::gil_scoped_release release;
        hub.stop_delivery();
      });
}

}  // namespace brandhooks::bindings
