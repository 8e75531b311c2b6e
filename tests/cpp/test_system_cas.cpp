#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "system_cas.hpp"

namespace {

struct SslCtx {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_client_method()), &SSL_CTX_free};
};

// Counts the certificates the context trusts (directories load lazily, so files only).
int trusted(SSL_CTX* ctx) { return sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx))); }

TEST(SystemCas, FindsTheSystemBundleWithoutEnvironment) {
  ::unsetenv("SSL_CERT_FILE");
  ::unsetenv("SSL_CERT_DIR");
  SslCtx s;
  std::string from = brandhooks::load_system_cas(s.ctx.get());
  ASSERT_FALSE(from.empty()) << "no CA certificates found on this machine";
  EXPECT_TRUE(std::filesystem::exists(from)) << from;
}

TEST(SystemCas, SslCertFileWins) {
  const char* bundle = "/etc/ssl/certs/ca-certificates.crt";
  if (!std::filesystem::exists(bundle)) GTEST_SKIP() << "no " << bundle;
  ::setenv("SSL_CERT_FILE", bundle, 1);
  SslCtx s;
  std::string from = brandhooks::load_system_cas(s.ctx.get());
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(from, bundle);
  EXPECT_GT(trusted(s.ctx.get()), 10);
}

TEST(SystemCas, SslCertFileReplacesTheBundleSearch) {
  // The variable is the user's choice: the usual bundle paths are not loaded behind its back.
  std::string empty = ::testing::TempDir() + "brandhooks-empty-ca.pem";
  { std::FILE* f = std::fopen(empty.c_str(), "w"); std::fclose(f); }
  ::setenv("SSL_CERT_FILE", empty.c_str(), 1);
  SslCtx s;
  std::string from = brandhooks::load_system_cas(s.ctx.get());
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(from, empty);
  EXPECT_EQ(trusted(s.ctx.get()), 0);
}

}  // namespace
