// File: transports/tls/internal/string_bios.h
// -----------------------------------------------------------------------------
//
// OpenSSL BIOs over a TlsSession's own buffers, so ciphertext is copied once
// each way instead of three times: OpenSSL reads records straight from the
// bytes the caller fed (a view, no copy into a memory BIO) and writes
// records straight onto the session's outgoing string (no memory BIO to
// zero-fill, grow and drain). Not part of the public surface of
// transports/tls.
//
// Example:
//
//   StringBioBuffers buffers;           // outlives the BIOs
//   buffers.output = &ciphertext;
//   SSL_set_bio(ssl, NewInputBio(&buffers), NewOutputBio(&buffers));
//   buffers.input = bytes_from_peer;    // SSL_read consumes it
//   SSL_read_ex(ssl, ...);
//   // buffers.input: what OpenSSL left unread; ciphertext: records to send.

#ifndef MANIFOLD_TRANSPORTS_TLS_INTERNAL_STRING_BIOS_H_
#define MANIFOLD_TRANSPORTS_TLS_INTERNAL_STRING_BIOS_H_

#include <string>

#include "absl/strings/string_view.h"

struct bio_st;  // OpenSSL's BIO

namespace manifold {

// What the two BIOs read from and write to. Not owned by them; must outlive
// them.
struct StringBioBuffers {
  // Ciphertext from the peer not read yet; reads take from its front. Empty
  // means "no more for now" (a retryable read), never end of file.
  absl::string_view input;
  // Ciphertext for the peer: every write appends here. REQUIRES: not null
  // once OpenSSL writes.
  std::string* output = nullptr;
};

// A BIO whose reads consume `buffers->input`; writes to it fail. Returns
// nullptr if OpenSSL cannot allocate one. The caller (or the SSL it is given
// to) frees it.
bio_st* NewInputBio(StringBioBuffers* buffers);

// A BIO whose writes append to `*buffers->output`; reads from it fail.
// Returns nullptr if OpenSSL cannot allocate one.
bio_st* NewOutputBio(StringBioBuffers* buffers);

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_TLS_INTERNAL_STRING_BIOS_H_
