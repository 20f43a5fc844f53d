// File: client/load/tls_link.h
// -----------------------------------------------------------------------------
//
// The TLS layer of one load-tool link (client/load/link.h): a client
// TlsSession (transports/tls, sans-IO) between the link's plaintext and its
// non-blocking socket. The link hands it whole batches of output, so OpenSSL
// cuts them into full-size records (16 KiB) instead of one record per
// message, and decrypts what one read brought in one call.
//
// Example:
//
//   absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
//       LoadTlsContext(options.tls, "127.0.0.1");
//   std::string plain;
//   absl::StatusOr<std::unique_ptr<TlsLink>> tls = TlsLink::Handshake(
//       fd, *context, absl::Now() + absl::Seconds(5), &plain);
//   absl::StatusOr<size_t> taken = (*tls)->Send(output);   // plaintext taken
//   absl::StatusOr<size_t> read = (*tls)->Receive(64 * 1024, &plain);
//
// In a build without OpenSSL, LoadTlsContext() returns FAILED_PRECONDITION
// and nothing else is reached.
//
// Thread safety: none; a link belongs to one event loop's thread.

#ifndef MANIFOLD_CLIENT_LOAD_TLS_LINK_H_
#define MANIFOLD_CLIENT_LOAD_TLS_LINK_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/load/load_options.h"

namespace manifold {
class TlsClientContext;
class TlsSession;
}  // namespace manifold

namespace manifold::load {

// Builds the client context every link of a run shares from `tls` (CA,
// optional client certificate, server name). An empty `tls.server_name`
// becomes `default_server_name` (the host of --server). Returns
// INVALID_ARGUMENT naming the file and OpenSSL's reason for files that do not
// load, and FAILED_PRECONDITION when this build has no OpenSSL.
absl::StatusOr<std::shared_ptr<const TlsClientContext>> LoadTlsContext(
    const LoadTlsOptions& tls, const std::string& default_server_name);

class TlsLink {
 public:
  // Runs a TLS client handshake on `context` over the connected,
  // non-blocking socket `fd` (not owned; it must outlive the TlsLink) until
  // it completes or `deadline` passes. Returns the handshake's failure (e.g.
  // a certificate that does not verify), UNAVAILABLE when the server closed
  // the connection or answered with something that is not TLS (a plain
  // port), or DEADLINE_EXCEEDED when it did not answer; each message says
  // what to check. Plaintext that arrived with the end of the handshake is
  // appended to `*early_plaintext`. REQUIRES: context != nullptr.
  static absl::StatusOr<std::unique_ptr<TlsLink>> Handshake(
      int fd, std::shared_ptr<const TlsClientContext> context,
      absl::Time deadline, std::string* early_plaintext);
  ~TlsLink();

  // Writes ciphertext already queued, then encrypts a prefix of `plaintext`
  // and writes it, until the socket would block or `plaintext` is all
  // taken. Returns how many plaintext bytes were taken (the rest must be
  // offered again), or an error if the connection is broken.
  absl::StatusOr<size_t> Send(absl::string_view plaintext);
  // Ciphertext bytes queued that the socket did not take yet.
  size_t pending_ciphertext() const;

  // Reads once at most `max_ciphertext` bytes from the socket and appends
  // their plaintext to `*plaintext` (never more bytes than were read).
  // Returns the ciphertext bytes read (0: nothing waiting), UNAVAILABLE when
  // the server closed the connection (close_notify or end of stream), or
  // the TLS failure. Queued ciphertext (e.g. an alert) goes out with the
  // next Send().
  absl::StatusOr<size_t> Receive(size_t max_ciphertext, std::string* plaintext);

 private:
  TlsLink(int fd, std::unique_ptr<TlsSession> session);
  // Writes queued ciphertext until the socket would block.
  absl::Status WriteCiphertext();

  const int fd_;
  std::unique_ptr<TlsSession> session_;
  std::unique_ptr<char[]> scratch_;
  size_t scratch_size_ = 0;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_TLS_LINK_H_
