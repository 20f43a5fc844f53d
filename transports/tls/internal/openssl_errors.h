// File: transports/tls/internal/openssl_errors.h
// -----------------------------------------------------------------------------
//
// Turns OpenSSL's thread-local error queue into text for a Status message.
// Not part of the public surface of transports/tls.
//
// Example:
//
//   if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1) {
//     return absl::InvalidArgumentError(
//         absl::StrCat("cannot load '", path, "': ", TakeOpenSslErrors()));
//   }

#ifndef MANIFOLD_TRANSPORTS_TLS_INTERNAL_OPENSSL_ERRORS_H_
#define MANIFOLD_TRANSPORTS_TLS_INTERNAL_OPENSSL_ERRORS_H_

#include <string>

namespace manifold {

// Empties this thread's OpenSSL error queue and returns its reasons, oldest
// first, joined with "; " ("unknown error" when the queue was empty).
std::string TakeOpenSslErrors();

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_TLS_INTERNAL_OPENSSL_ERRORS_H_
