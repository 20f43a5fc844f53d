// File: broker/http/http_credentials.h
// -----------------------------------------------------------------------------
//
// What a web client presents to the broker's admission (Hello.auth_token,
// Hello.user, Hello.password), and how an HTTP request's Authorization
// header carries it:
//
//   Authorization: Bearer T          -> token T
//   Authorization: Basic base64(u:p) -> user u, password p
//
//   absl::StatusOr<ClientCredentials> c = CredentialsFromRequest(request);
//   if (!c.ok()) { /* 400: c.status().message() names the problem */ }
//   c->FillHello(hello);
//
// The HTTP front end (http_codec.h) uses it for every request that starts a
// broker session; Bayeux clients may put theirs in the handshake's ext
// instead (bayeux.h).

#ifndef MANIFOLD_BROKER_HTTP_HTTP_CREDENTIALS_H_
#define MANIFOLD_BROKER_HTTP_HTTP_CREDENTIALS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/http/request_parser.h"
#include "core/manifold.pb.h"

namespace manifold {

// A bearer token, or a user name and password; any field may be empty.
// Without any of them, a request that acts for a Bayeux session may claim
// that session's login instead (Hello.session_token, session_binding).
struct ClientCredentials {
  std::string token;
  std::string user;
  std::string password;
  std::string session_token;
  std::string session_binding;

  // True without a token, user or password (a session claim is not one).
  bool empty() const {
    return token.empty() && user.empty() && password.empty();
  }
  bool operator==(const ClientCredentials& other) const {
    return token == other.token && user == other.user &&
           password == other.password && session_token == other.session_token &&
           session_binding == other.session_binding;
  }
  bool operator!=(const ClientCredentials& other) const {
    return !(*this == other);
  }

  // A SHA-256 digest of the token, user and password, so that a codec can
  // tell later credentials apart from these without keeping them.
  std::string Digest() const;

  // Writes the credentials, and the session claim, into `hello` unless the
  // Hello carries credentials of its own (a client's own Hello or NATS
  // CONNECT wins over the HTTP request that carried it).
  void FillHello(wire::Hello& hello) const;
};

// The credentials of an Authorization header value. Returns
// INVALID_ARGUMENT naming the problem for a scheme other than Basic or
// Bearer (case-insensitive), an empty token, Basic credentials that are not
// base64, or that hold no ':' between user and password.
absl::StatusOr<ClientCredentials> ParseAuthorization(absl::string_view value);

// The credentials of `request`'s Authorization header; empty without one.
// Errors as ParseAuthorization().
absl::StatusOr<ClientCredentials> CredentialsFromRequest(
    const http::HttpRequest& request);

// The WWW-Authenticate challenges a 401 answer carries.
inline constexpr absl::string_view kBasicChallenge = "Basic realm=\"manifold\"";
inline constexpr absl::string_view kBearerChallenge =
    "Bearer realm=\"manifold\"";

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_HTTP_CREDENTIALS_H_
