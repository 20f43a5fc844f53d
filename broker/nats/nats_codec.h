// File: broker/nats/nats_codec.h
// -----------------------------------------------------------------------------
//
// A ProtocolCodec for the NATS core client protocol, so that existing NATS
// clients talk to a Manifold Broker unchanged and share topics, subscriptions
// and messages with native clients. Create one per NATS connection and hand it
// to Broker::Accept:
//
//   NatsOptions nats;
//   nats.host = "127.0.0.1";
//   nats.port = 4222;
//   Connection& c = broker.Accept(PeerInfo{"127.0.0.1:50212"}, now,
//                                 std::make_unique<NatsCodec>(nats));
//   // From here on the transport moves bytes exactly as for native clients.
//
// The conversation, and what each NATS command becomes:
//
//   INFO         written by Start(): server_id, server_name, version, proto 1,
//                host/port, headers true, auth_required, max_payload,
//                client_id (the broker's connection id), client_ip.
//   CONNECT      must come first (anything else first is a fatal
//                'Authorization Violation', as nats-server says when it
//                requires auth). Becomes Hello: name -> client_name,
//                echo:false -> no_echo, and the credentials for the
//                embedder's admission (Broker::Admit/Refuse): auth_token ->
//                Hello.auth_token, user -> Hello.user, pass ->
//                Hello.password, each as given (a client may send none).
//                verbose, headers and no_responders stay in the codec;
//                pedantic is accepted and changes nothing, since subjects are
//                always checked as nats-server checks them in pedantic mode.
//                Welcome -> "+OK" when verbose; a refusal -> -ERR
//                'Authorization Violation' and the connection closes, as
//                nats-server 2.9 answers a wrong or missing credential (the
//                broker's reason stays in the broker's close status and
//                events, never on the wire). A second CONNECT updates verbose,
//                headers and no_responders (name, echo and credentials stay as
//                first given).
//   PUB, HPUB    a zero-copy PublishOp (payload and header views point into
//                the input; subject and reply are mapped into codec storage).
//                Headers: each "Key: Value" line is one header; a status line
//                "NATS/1.0 503 No Responders" becomes the headers Status: 503
//                and Description: No Responders. ack is set in verbose mode
//                (the broker's Ack becomes "+OK"); no_responders is set when
//                the client enabled headers and no_responders and gave a reply
//                subject, so a request nobody receives gets an HMSG with
//                "NATS/1.0 503" on its reply subject. Subjects under
//                "$JS.API.CONSUMER.CREATE." may hold wildcards (the
//                consumer's filter); the broker serves $JS.API and $JS.ACK
//                (docs/nats.md, JetStream).
//   SUB          Subscribe with a codec-chosen op_id; the broker's Ack tells
//                the SubscriptionId, which the codec maps to the client's sid.
//                A sid already in use is ignored, as nats-server does.
//   UNSUB        Unsubscribe{max_messages}; an unknown sid is ignored.
//   PING, PONG   Ping (the broker's Pong becomes PONG) and Pong. The
//                broker's keepalive Ping becomes PING.
//   MSG, HMSG    EncodeDelivery, with the client's sid. HMSG when the message
//                has headers and the client enabled them; a client without
//                headers gets MSG with the payload only, as from nats-server.
//
// Commands that need no broker action (an UNSUB of an unknown sid, a SUB with
// a sid in use, a second CONNECT, INFO) and subjects the codec rejects itself
// still answer in order: the codec hands the broker a Ping and writes its own
// answer ("+OK" in verbose mode, or the -ERR) in place of the Pong, or, when
// there is nothing to answer, a Pong, which the broker takes silently.
//
// Subjects and topics map as core/nats/subject.h describes: "." <-> "/",
// "*" <-> "*", ">" <-> a trailing "*/**", and "//" inside a NATS token <-> "."
// inside a Manifold segment. A subject with no Manifold form is answered with
// -ERR 'Invalid Subject' (SUB) or 'Invalid Publish Subject' (PUB/HPUB, also
// for a bad reply subject, and for wildcards, which NATS does not allow in
// publishes); the connection stays open. A native topic always has a NATS
// form; see subject.h for the two approximations (a "**" segment, a literal
// ">" segment).
//
// Request/reply across protocols: reply subjects are carried both ways in
// Publish.reply_to / Deliver.reply_to, mapped like any subject.
//   - A NATS request (PUB svc _INBOX.x.1) reaches native subscribers of "svc"
//     as a Deliver with reply_to "_INBOX/x/1"; the native client answers with
//     Publish{topic: "_INBOX/x/1"}, which the NATS client's inbox
//     subscription ("_INBOX.x.*") receives.
//   - A native client asks NATS responders by subscribing to an inbox topic
//     (e.g. "inbox/me/*") and publishing with reply_to "inbox/me/1" (and
//     no_responders for a 503 when nobody listens); the NATS responder gets
//     "MSG svc <sid> inbox.me.1 ..." and its PUB inbox.me.1 comes back.
//   Native Serve/Request services are a separate mechanism that NATS clients
//   do not reach.
//
// Errors: -ERR with the strings NATS clients expect (core/nats/errors.h).
// Fatal, then the connection closes: 'Unknown Protocol Operation', 'Parser
// Error', 'Maximum Control Line Exceeded', 'Maximum Payload Violation',
// 'Authorization Violation', 'Authentication Timeout', 'Stale Connection'
// (missed keepalives), 'Slow Consumer', 'Maximum Connections Exceeded'. Not
// fatal: 'Invalid Subject', 'Invalid Publish Subject', 'Maximum
// Subscriptions Exceeded', and 'Permissions Violation for Publish to "<subj>"'
// for reserved ("$...") topics other than $JS.API and $JS.ACK. Any other
// broker error is passed on with the broker's own message. The broker's
// Goodbye (shutdown) writes nothing: the connection just closes, as with
// nats-server.
//
// Limits: NatsOptions. The payload limit in INFO and enforced on PUB/HPUB
// (headers included, as NATS counts it) is the smallest of
// NatsOptions::max_payload_bytes, BrokerOptions::max_payload_bytes and what
// one BrokerOptions::max_frame_bytes operation leaves after a control line of
// max_control_line_bytes: a client that keeps to INFO's max_payload never
// meets a broker limit. To offer NATS's full 1 MiB, give the broker
// max_frame_bytes >= 1 MiB + max_control_line_bytes + 4 (1052676 with the
// defaults); with the broker's default of 1 MiB, INFO says 1044476.
//
// Per-connection state is bounded: one entry per live subscription (the
// broker caps those; a sid is at most a control line long), one operation in
// flight, and scratch for one message's subject, reply and header block.
//
// Thread safety: none; a codec belongs to its connection.

#ifndef MANIFOLD_BROKER_NATS_NATS_CODEC_H_
#define MANIFOLD_BROKER_NATS_NATS_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/protocol_codec.h"
#include "core/ids.h"
#include "core/nats/parser.h"

namespace manifold {

// How a NATS listener presents itself and what it allows. One value is
// usually shared by every connection of a listener.
struct NatsOptions {
  // INFO server_id; empty: the broker's server name.
  std::string server_id;
  // INFO version; empty: the broker's version.
  std::string version;
  // The listener's address, for INFO host and port; omitted when empty / 0.
  std::string host;
  int port = 0;
  // Advertise auth_required in INFO. Credentials reach the embedder through
  // Broker admission (BrokerOptions::require_admission); set both.
  bool auth_required = false;
  // Advertise tls_required in INFO: the listener sends INFO in clear and
  // then expects the client's TLS handshake (the transport does the TLS).
  bool tls_required = false;
  // Largest message a client may publish, headers included (NATS's
  // max_payload). See the header comment for how it meets the broker's
  // limits.
  size_t max_payload_bytes = nats::kDefaultMaxPayloadBytes;
  // Longest control line (NATS's max_control_line).
  size_t max_control_line_bytes = nats::kDefaultMaxControlLineBytes;
};

// `options` as text ("key=value" pairs separated by ';'), and back. Used as
// the codec's settings() in recorded transcripts.
std::string NatsSettingsText(const NatsOptions& options);
absl::StatusOr<NatsOptions> ParseNatsSettings(absl::string_view text);

class NatsCodec final : public ProtocolCodec {
 public:
  explicit NatsCodec(NatsOptions options = NatsOptions());

  absl::string_view name() const override { return "nats"; }
  std::string settings() const override { return NatsSettingsText(options_); }
  void Start(const ConnectionStart& start, OutboundBuffer& out) override;
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override;
  void Encode(const wire::ServerMessage& message, OutboundBuffer& out) override;
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override;

  // The payload limit in force (announced in INFO). Valid after Start().
  size_t max_payload_bytes() const { return max_payload_; }

 private:
  struct SidEntry {
    std::string sid;
    uint64_t delivered = 0;
    uint64_t max_messages = 0;  // 0: no limit
  };
  // The one operation handed to the broker and not answered yet. The broker
  // answers every operation before it asks for the next one.
  struct InFlight {
    enum class Kind { kNone, kSub, kUnsub, kPub } kind = Kind::kNone;
    uint64_t op_id = 0;
    std::string sid;
    // kSub: the subject and queue group as the client wrote them, for
    // nats-server's permission violation text.
    std::string subject;
    std::string queue_group;
    uint64_t max_messages = 0;
  };

  absl::Status Translate(const nats::Command& command, Operation& op);
  absl::Status TranslateConnect(const nats::Command& command, Operation& op);
  absl::Status TranslatePublish(const nats::Command& command, Operation& op);
  void TranslateSubscribe(const nats::Command& command, Operation& op);
  void TranslateUnsubscribe(const nats::Command& command, Operation& op);
  // For a PUB subject with no publish topic: maps JetStream's consumer
  // create subject (whose filter may hold wildcards) into publish_topic_
  // and publish_subject_; clears publish_subject_ for any other. Out of
  // line: the publish path stays short.
  ABSL_ATTRIBUTE_NOINLINE void MapOtherPublishSubject(
      absl::string_view subject);
  // Makes `op` a Ping whose Pong the codec replaces with `answer`.
  void AnswerLocally(std::string answer, Operation& op);
  // "+OK\r\n" in verbose mode, else "".
  std::string OkIfVerbose() const;

  void EncodeAck(const wire::Ack& ack, OutboundBuffer& out);
  void EncodeError(const wire::Error& error, OutboundBuffer& out);

  uint64_t NextOpId() { return ++last_op_id_; }

  const NatsOptions options_;
  size_t max_payload_ = 0;

  // From CONNECT. (pedantic is accepted and has no effect: subjects are
  // always checked as nats-server checks them in pedantic mode.)
  bool connected_ = false;
  bool verbose_ = false;
  bool headers_ = false;
  bool no_responders_ = false;

  uint64_t last_op_id_ = 0;
  InFlight in_flight_;
  // The Ping that stands for a locally answered command, and its answer.
  uint64_t local_answer_op_id_ = 0;
  std::string local_answer_;
  // The command Decode() is translating (its views point into the input).
  nats::Command command_;
  // The -ERR text for the fatal error Decode() just returned.
  std::string fatal_text_;

  // Mapped pattern of the SUB being handled.
  std::string topic_;
  // The last PUB subject and its mapping (kept while publishes repeat it),
  // and the mapped reply of the publish being handled.
  std::string publish_subject_;
  std::string publish_topic_;
  std::string reply_to_;
  // Scratch for encoding a delivery: its reply subject and header block.
  std::string reply_subject_;
  std::string header_block_;

  absl::flat_hash_map<std::string, SubscriptionId> by_sid_;
  absl::flat_hash_map<SubscriptionId, SidEntry> by_id_;
  // The entry the last delivery used; reset whenever by_id_ changes.
  SidEntry* last_entry_ = nullptr;
  SubscriptionId last_entry_id_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_NATS_NATS_CODEC_H_
