// Finding the system's trusted CA certificates, wherever this Linux keeps them.
#pragma once

#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace brandhooks {

// Loads the system's CA certificates into ctx and returns where they came from ("" if nowhere):
// SSL_CERT_FILE / SSL_CERT_DIR when set; else OpenSSL's compiled-in defaults when they exist
// here; else the first bundle found in the usual places (Debian, Fedora/RHEL, SUSE, Alpine).
// The wheel links OpenSSL statically, so its compiled-in directory is the build machine's
// (Debian's /usr/lib/ssl), which other distributions do not have.
std::string load_system_cas(SSL_CTX* ctx);

}  // namespace brandhooks
