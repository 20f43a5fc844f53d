// Fuzzes the TLS glue's record handling (transports/tls/): a server-side
// TlsSession, or the TlsLinkSecurity the driver uses, fed bytes as if they
// came from the socket.
//
// Input: a body followed by two control bytes, options and a chunking seed,
// so that a captured ClientHello with two bytes appended is a useful seed.
//
//   options bit 0   0: the body is raw socket bytes, delivered in chunks
//                      whose sizes the seed picks (partial and coalesced
//                      records);
//                   1: a real client session completes a handshake in
//                      memory first, then the body is a program that writes,
//                      injects, flips, drops, forges and delivers records on
//                      the client-to-server stream (application data,
//                      alerts, bad MACs, oversized records, close_notify).
//   options bit 1   the client offers at most TLS 1.2 (else TLS 1.3).
//   options bit 2   drive the TlsSession directly (else TlsLinkSecurity).
//   options bits 3-4  max_pending_ciphertext: 1 KiB, 4 KiB, 64 KiB, 256 KiB.
//
// Invariants (each failure traps):
//   - no plaintext reaches the codec before the handshake is done, none
//     after close_notify, and never more than the ciphertext fed;
//   - what the server decrypts is always a prefix of what the real client
//     wrote (forged, flipped, dropped or injected bytes never decrypt), and
//     an untouched stream never fails;
//   - PendingCiphertext() stays within max_pending_ciphertext plus one
//     record (the bound tls_session.h states);
//   - a failure is final: later Feed() calls return it again, decrypt
//     nothing and queue nothing; Write() takes nothing; a failure names its
//     kind, and "plain text" exactly when the first byte is not 0x16;
//   - Write() takes nothing before the handshake is done.
//
// Certificates are made in memory at start-up (a P-256 key and a
// self-signed certificate with fixed validity dates); nothing reads the
// clock except OpenSSL's own certificate check.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "transports/driver/link_security.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_link_security.h"
#include "transports/tls/tls_session.h"

namespace {

using manifold::LinkSecurity;
using manifold::LinkSecurityFailure;
using manifold::TlsSession;

// One TLS record: at most 16 KiB of plaintext plus header, padding and tag
// (RFC 8446 allows 256 bytes of expansion; TLS 1.2's is smaller).
constexpr size_t kMaxRecordCiphertext = 16 * 1024 + 256 + 5;

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "tls_record_fuzzer: invariant broken: %s\n", what);
    __builtin_trap();
  }
}

// ---------------------------------------------------------------------------
// Certificates and contexts, made once.

struct Contexts {
  std::shared_ptr<const manifold::TlsServerContext> server;
  std::shared_ptr<const manifold::TlsClientContext> client13;
  std::shared_ptr<const manifold::TlsClientContext> client12;
};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tls_record_fuzzer: setup failed: %s\n", what);
    std::abort();
  }
}

// Writes a P-256 key and a self-signed certificate for "localhost" to
// `dir`/key.pem and `dir`/cert.pem.
void WriteSelfSignedCertificate(const std::string& dir) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  X509* cert = X509_new();
  Check(cert != nullptr, "X509_new");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  // Fixed dates, so that nothing depends on when the fuzzer runs.
  Check(ASN1_TIME_set_string_X509(X509_getm_notBefore(cert),
                                  "20000101000000Z") == 1,
        "notBefore");
  Check(ASN1_TIME_set_string_X509(X509_getm_notAfter(cert),
                                  "99991231235959Z") == 1,
        "notAfter");
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  Check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");

  FILE* key_file = std::fopen((dir + "/key.pem").c_str(), "w");
  FILE* cert_file = std::fopen((dir + "/cert.pem").c_str(), "w");
  Check(key_file != nullptr && cert_file != nullptr, "fopen");
  Check(PEM_write_PrivateKey(key_file, key, nullptr, nullptr, 0, nullptr,
                             nullptr) == 1,
        "PEM_write_PrivateKey");
  Check(PEM_write_X509(cert_file, cert) == 1, "PEM_write_X509");
  std::fclose(key_file);
  std::fclose(cert_file);
  X509_free(cert);
  EVP_PKEY_free(key);
}

const Contexts& SharedContexts() {
  static const Contexts* contexts = [] {
    std::string dir =
        (std::filesystem::temp_directory_path() / "tls_fuzz_XXXXXX").string();
    Check(mkdtemp(dir.data()) != nullptr, "mkdtemp");
    WriteSelfSignedCertificate(dir);

    auto* made = new Contexts;
    manifold::TlsSettings server;
    server.cert_file = dir + "/cert.pem";
    server.key_file = dir + "/key.pem";
    auto server_context = manifold::TlsServerContext::Create(server);
    Check(server_context.ok(), "TlsServerContext::Create");
    made->server = *server_context;

    manifold::TlsClientSettings client;
    client.ca_file = dir + "/cert.pem";
    client.server_name = "localhost";
    auto client13 = manifold::TlsClientContext::Create(client);
    auto client12 = manifold::TlsClientContext::Create(client);
    Check(client13.ok() && client12.ok(), "TlsClientContext::Create");
    // A separate context, not yet shared by any session: capping its
    // version here is safe.
    SSL_CTX_set_max_proto_version((*client12)->native(), TLS1_2_VERSION);
    made->client13 = *client13;
    made->client12 = *client12;
    std::filesystem::remove_all(dir);
    return made;
  }();
  return *contexts;
}

// ---------------------------------------------------------------------------
// The server under test: the session alone, or the driver's LinkSecurity.

class Server {
 public:
  Server(bool use_session, manifold::TlsSessionOptions options)
      : max_pending_(options.max_pending_ciphertext) {
    if (use_session) {
      session_ = TlsSession::ForServer(SharedContexts().server, options);
    } else {
      manifold::TlsLinkOptions link_options;
      link_options.session = options;
      link_ =
          manifold::MakeTlsLinkSecurity(SharedContexts().server, link_options);
    }
  }

  absl::Status Feed(absl::string_view bytes, std::string* plaintext) {
    return session_ ? session_->Feed(bytes, plaintext)
                    : link_->Feed(bytes, plaintext);
  }
  size_t Write(absl::string_view plaintext) {
    return session_ ? session_->Write(plaintext) : link_->Write(plaintext);
  }
  absl::string_view Pending() const {
    return session_ ? session_->PendingCiphertext()
                    : link_->PendingCiphertext();
  }
  void Consume(size_t n) {
    session_ ? session_->ConsumeCiphertext(n) : link_->ConsumeCiphertext(n);
  }
  bool handshake_done() const {
    return session_ ? session_->handshake_done() : link_->handshake_done();
  }
  bool peer_closed() const {
    return session_ ? session_->peer_closed() : link_->peer_closed();
  }
  // The failure's kind in the driver's terms.
  LinkSecurityFailure failure_kind() const {
    if (link_) return link_->failure_kind();
    return manifold::LinkSecurityFailureOf(session_->failure_kind());
  }
  TlsSession* session() { return session_.get(); }

  // The bound tls_session.h states for PendingCiphertext().
  size_t pending_bound() const { return max_pending_ + kMaxRecordCiphertext; }

 private:
  const size_t max_pending_;
  std::unique_ptr<TlsSession> session_;
  std::unique_ptr<LinkSecurity> link_;
};

// Feeds the server and checks every invariant about one Feed().
class CheckedServer {
 public:
  explicit CheckedServer(Server& server) : server_(server) {}

  // Returns the plaintext this call produced.
  std::string Feed(absl::string_view bytes) {
    const bool failed_before = !failure_.ok();
    const bool closed_before = server_.peer_closed();
    const size_t pending_before = server_.Pending().size();
    std::string plain;
    const absl::Status status = server_.Feed(bytes, &plain);
    if (failed_before) {
      Require(!status.ok(), "a failure is final");
      Require(status == failure_, "the failure stays the same");
      Require(plain.empty(), "nothing is decrypted after a failure");
      Require(server_.Pending().size() <= pending_before,
              "nothing is queued after a failure");
      Require(server_.Write("after failure") == 0,
              "Write takes nothing after a failure");
      return plain;
    }
    if (!bytes.empty() && !first_byte_seen_) {
      first_byte_seen_ = true;
      first_byte_ = static_cast<unsigned char>(bytes[0]);
    }
    if (!status.ok()) {
      failure_ = status;
      Require(!status.message().empty(), "a failure has a message");
      const LinkSecurityFailure kind = server_.failure_kind();
      Require(kind != LinkSecurityFailure::kNone, "a failure has a kind");
      Require(
          (kind == LinkSecurityFailure::kPlainText) == (first_byte_ != 0x16),
          "plain text is reported exactly when the first byte is not a "
          "handshake record");
      if (kind == LinkSecurityFailure::kPlainText) {
        Require(absl::StrContains(status.message(), "plain text on a TLS port"),
                "plain text is named");
        Require(!server_.handshake_done(), "plain text before a handshake");
      }
      if (kind == LinkSecurityFailure::kProtocol) {
        Require(server_.handshake_done(),
                "protocol errors come after the handshake");
      }
    }
    if (!plain.empty()) {
      Require(server_.handshake_done(),
              "no plaintext before the handshake is done");
      Require(!closed_before, "no plaintext after close_notify");
    }
    if (!server_.handshake_done()) {
      Require(server_.Write("early") == 0,
              "Write takes nothing before the handshake");
    }
    fed_ += bytes.size();
    decrypted_ += plain.size();
    Require(decrypted_ <= fed_, "plaintext never exceeds the ciphertext fed");
    Require(server_.Pending().size() <= server_.pending_bound(),
            "pending ciphertext stays bounded");
    return plain;
  }

  bool failed() const { return !failure_.ok(); }

 private:
  Server& server_;
  absl::Status failure_;
  bool first_byte_seen_ = false;
  unsigned char first_byte_ = 0x16;
  size_t fed_ = 0;
  size_t decrypted_ = 0;
};

// Reads the program (or the chunking) from the input; past the end, zeros.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool done() const { return at_ >= data_.size(); }
  uint8_t Byte() {
    return at_ < data_.size() ? static_cast<uint8_t>(data_[at_++]) : 0;
  }
  uint16_t U16() { return static_cast<uint16_t>(Byte() << 8 | Byte()); }
  absl::string_view Bytes(size_t n) {
    absl::string_view out = data_.substr(at_, n);
    at_ += out.size();
    return out;
  }

 private:
  absl::string_view data_;
  size_t at_ = 0;
};

// A small PRNG for chunk sizes, seeded by the input (never by the clock).
class Chunker {
 public:
  explicit Chunker(uint8_t seed) : state_(0x9e3779b9u ^ (seed * 0x01000193u)) {}
  uint32_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  size_t ChunkSize(size_t left) {
    const uint32_t r = Next();
    switch (r & 7) {
      case 0:
        return 1;
      case 1:
        return left;  // everything coalesced
      case 2:
        return 5;  // a record header
      case 3:
        return 1 + (r >> 8) % 8;
      default:
        return 1 + (r >> 8) % 600;
    }
  }

 private:
  uint32_t state_;
};

// Mode 0: arbitrary bytes from the socket, in chunks.
void RawBytes(absl::string_view body, uint8_t seed, Server& server) {
  CheckedServer checked(server);
  Chunker chunker(seed);
  size_t at = 0;
  while (at < body.size()) {
    const size_t n = std::min(body.size() - at, chunker.ChunkSize(body.size()));
    checked.Feed(body.substr(at, n));
    at += n;
    // Sometimes the socket takes what is pending, sometimes it does not.
    if (chunker.Next() & 1) server.Consume(server.Pending().size());
  }
  // Once failed, more input yields nothing.
  if (checked.failed()) checked.Feed(body.empty() ? "x" : body);
  if (TlsSession* session = server.session()) {
    const absl::Status end = session->FinishInput();
    if (session->failed()) {
      Require(end == session->failure(), "FinishInput repeats the failure");
    }
  }
}

// A deterministic plaintext pattern, so a prefix check means something.
std::string Pattern(size_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((offset + i) * 131 + ((offset + i) >> 8));
  }
  return out;
}

// Mode 1: a real handshake, then a program over the record stream.
void AfterHandshake(absl::string_view body, bool tls12, Server& server) {
  const Contexts& contexts = SharedContexts();
  std::unique_ptr<TlsSession> client =
      TlsSession::ForClient(tls12 ? contexts.client12 : contexts.client13);
  CheckedServer checked(server);
  std::string client_plain;
  for (int round = 0; round < 10; ++round) {
    const std::string to_server(client->PendingCiphertext());
    client->ConsumeCiphertext(to_server.size());
    checked.Feed(to_server);
    const std::string to_client(server.Pending());
    server.Consume(to_client.size());
    Require(client->Feed(to_client, &client_plain).ok(),
            "the handshake between our own sessions succeeds");
    if (client->handshake_done() && server.handshake_done() &&
        client->PendingCiphertext().empty() && server.Pending().empty()) {
      break;
    }
  }
  Require(client->handshake_done() && server.handshake_done(),
          "the handshake completes in memory");
  Require(!checked.failed(), "the handshake does not fail the server");

  std::string stream;        // client -> server, not yet delivered
  std::string client_sent;   // plaintext the client wrote
  std::string server_plain;  // plaintext the server decrypted
  std::string server_sent;   // plaintext the server wrote
  std::string client_got;    // plaintext the client decrypted
  bool tampered = false;
  auto take_client_output = [&] {
    stream.append(client->PendingCiphertext().data(),
                  client->PendingCiphertext().size());
    client->ConsumeCiphertext(client->PendingCiphertext().size());
  };
  auto deliver = [&](size_t n) {
    n = std::min(n, stream.size());
    const bool failed_before = checked.failed();
    server_plain += checked.Feed(absl::string_view(stream).substr(0, n));
    stream.erase(0, n);
    Require(absl::StartsWith(client_sent, server_plain),
            "the server decrypts only what the client wrote, in order");
    if (!tampered) {
      Require(failed_before || !checked.failed(),
              "an untouched record stream does not fail");
    }
  };

  Reader program(body);
  for (int step = 0; step < 64 && !program.done(); ++step) {
    switch (program.Byte() % 10) {
      case 0: {  // the client writes
        const size_t n = program.U16() % 40000;
        const size_t taken = client->Write(Pattern(client_sent.size(), n));
        client_sent += Pattern(client_sent.size(), taken);
        take_client_output();
        break;
      }
      case 1:  // deliver a prefix of the stream
        deliver(program.U16());
        break;
      case 2:  // deliver everything
        deliver(stream.size());
        break;
      case 3: {  // flip bits (bad MAC, bad header)
        if (stream.empty()) break;
        const size_t at = program.U16() % stream.size();
        stream[at] = static_cast<char>(stream[at] ^ (program.Byte() | 1));
        tampered = true;
        break;
      }
      case 4: {  // inject raw bytes
        const size_t n = program.Byte();
        const absl::string_view bytes = program.Bytes(n);
        const size_t at =
            stream.empty() ? 0 : program.U16() % (stream.size() + 1);
        stream.insert(at, bytes.data(), bytes.size());
        tampered = tampered || !bytes.empty();
        break;
      }
      case 5: {  // drop bytes
        if (stream.empty()) break;
        const size_t at = program.U16() % stream.size();
        const size_t n = 1 + program.U16() % (stream.size() - at);
        stream.erase(at, n);
        tampered = true;
        break;
      }
      case 6: {  // a forged record: type, version and length from the input
        std::string record;
        record.push_back(static_cast<char>(program.Byte()));  // content type
        record.push_back(0x03);
        record.push_back(static_cast<char>(program.Byte() % 5));
        const uint16_t length = program.U16();
        record.push_back(static_cast<char>(length >> 8));
        record.push_back(static_cast<char>(length & 0xff));
        const absl::string_view payload = program.Bytes(length);
        record.append(payload.data(), payload.size());
        record.append(length - payload.size(), '\0');
        stream += record;
        tampered = true;
        break;
      }
      case 7: {  // an oversized application-data record
        const size_t length = 16 * 1024 + 256 + 1 + program.Byte() * 64;
        std::string record = {0x17, 0x03, 0x03, static_cast<char>(length >> 8),
                              static_cast<char>(length & 0xff)};
        record.append(length, static_cast<char>(program.Byte()));
        stream += record;
        tampered = true;
        break;
      }
      case 8:  // the client closes (close_notify)
        client->Shutdown();
        take_client_output();
        break;
      case 9: {  // the server writes; the client reads part of it
        const size_t n = program.U16() % 70000;
        const size_t taken = server.Write(Pattern(server_sent.size(), n));
        if (checked.failed()) Require(taken == 0, "no Write after a failure");
        server_sent += Pattern(server_sent.size(), taken);
        Require(server.Pending().size() <= server.pending_bound(),
                "Write keeps pending ciphertext bounded");
        const size_t give =
            std::min<size_t>(server.Pending().size(), program.U16() * 4);
        const std::string to_client(server.Pending().substr(0, give));
        server.Consume(give);
        if (!client->failed()) {
          const absl::Status s = client->Feed(to_client, &client_got);
          Require(s.ok() || checked.failed(),
                  "the server's own records decrypt at the client");
          Require(absl::StartsWith(server_sent, client_got),
                  "the client decrypts what the server wrote, in order");
        }
        break;
      }
    }
  }
  deliver(stream.size());
  // Once failed, more input yields nothing.
  if (checked.failed()) checked.Feed(body.empty() ? "x" : body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const absl::string_view body = input.substr(0, size - 2);
  const uint8_t seed = data[size - 2];
  const uint8_t options = data[size - 1];
  static constexpr size_t kMaxPending[] = {1024, 4096, 64 * 1024, 256 * 1024};
  manifold::TlsSessionOptions session_options;
  session_options.max_pending_ciphertext = kMaxPending[(options >> 3) & 3];
  Server server(/*use_session=*/(options & 4) != 0, session_options);
  if (options & 1) {
    AfterHandshake(body, /*tls12=*/(options & 2) != 0, server);
  } else {
    RawBytes(body, seed, server);
  }
  return 0;
}
