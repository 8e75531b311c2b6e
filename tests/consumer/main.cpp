// Creates and lists a webhook through the installed brandhooks::core; exits non-zero on any
// mismatch, so the test command fails if the installed package is unusable.
#include <brandhooks/hub.hpp>
#include <brandhooks/version.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>

int main(int argc, char** argv) {
  if (std::strcmp(brandhooks::version, PACKAGE_VERSION) != 0) {
    std::fprintf(stderr, "consumer: header version %s, package version %s\n", brandhooks::version, PACKAGE_VERSION);
    return 1;
  }
  brandhooks::Config config;
  config.db = argc > 1 ? argv[1] : "consumer.db";
  std::filesystem::remove(config.db);
  brandhooks::Hub hub(config);

  const std::string brand = "7d8e9f00-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
  brandhooks::Webhook created = hub.create_webhook(brand, "Deals", "https://example.com/deals");
  brandhooks::Page<brandhooks::Webhook> page = hub.list_webhooks({brand, "Deals", 0, std::nullopt});
  if (page.total != 1 || page.items.size() != 1 || page.items[0].id != created.id ||
      page.items[0].key.size() != 64) {
    std::fprintf(stderr, "consumer: unexpected list result\n");
    return 1;
  }
  try {
    hub.create_webhook(brand, "deals", "https://example.com/");
    std::fprintf(stderr, "consumer: a lowercase topic was accepted\n");
    return 1;
  } catch (const brandhooks::ValidationError&) {
  }
  std::printf("consumer: created and listed %s\n%s\n", created.id.c_str(),
              brandhooks::to_json(page.items[0]).c_str());
  return 0;
}
