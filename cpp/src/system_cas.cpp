#include "system_cas.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>

namespace brandhooks {
namespace {

// The usual places of the CA bundle (one PEM file) and of hashed certificate directories.
constexpr const char* kBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL 7+, Amazon Linux
    "/etc/ssl/ca-bundle.pem",                             // openSUSE, SLES
    "/etc/ssl/cert.pem",                                  // Alpine, Arch
};
constexpr const char* kDirectories[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};

bool exists(const char* path) {
  std::error_code ec;
  return path != nullptr && std::filesystem::exists(path, ec);
}

}  // namespace

std::string load_system_cas(SSL_CTX* ctx) {
  const char* env_file = std::getenv(X509_get_default_cert_file_env());  // SSL_CERT_FILE
  const char* env_dir = std::getenv(X509_get_default_cert_dir_env());    // SSL_CERT_DIR
  // Honours the two variables, else uses the locations compiled into OpenSSL.
  SSL_CTX_set_default_verify_paths(ctx);
  if (env_file != nullptr || env_dir != nullptr) return env_file != nullptr ? env_file : env_dir;
  if (exists(X509_get_default_cert_file())) return X509_get_default_cert_file();
  for (const char* bundle : kBundles) {
    if (exists(bundle) && SSL_CTX_load_verify_locations(ctx, bundle, nullptr) == 1) return bundle;
  }
  for (const char* directory : kDirectories) {
    if (exists(directory) && SSL_CTX_load_verify_locations(ctx, nullptr, directory) == 1) return directory;
  }
  return "";
}

}  // namespace brandhooks
