// File: core/nats/subject.h
// -----------------------------------------------------------------------------
//
// How NATS subjects and Manifold topics map onto each other, so NATS and
// native clients share one namespace.
//
// NATS -> Manifold (what NATS clients publish and subscribe to):
//   - tokens are separated by '.', segments by '/': "a.b.c" -> "a/b/c"
//   - `*` stays `*` (one token / one segment)
//   - `>` becomes `*/**` (one or more tokens); only as the last token
//   - a '.' inside a Manifold segment is written "//" inside a NATS token, as
//     nats-server does for MQTT topics: "spBv1//0.plant" -> "spBv1.0/plant"
// A subject with no Manifold form is rejected: an empty token ("a..b", ".a"),
// a '/' that is not half of "//", `>` anywhere but last, a token of two or
// more '*' (a literal in NATS, a wildcard in Manifold), or a wildcard where
// the subject must be literal (publish and reply subjects).
//
// Manifold -> NATS (topics and reply topics delivered to NATS clients) is the
// inverse, and total: every valid topic has a NATS form. '/' becomes '.', '.'
// becomes "//", `*` stays `*`, a trailing `*/**` becomes `>`. Two cases have no
// exact NATS equivalent and are written as close as NATS allows: a `**`
// segment anywhere else becomes `>` (NATS has no zero-or-more wildcard; this
// only appears when a native client publishes to a pattern), and a literal
// segment `>` stays `>` (NATS clients cannot publish to it).
//
// Every NATS subject that maps, maps back to itself, and every topic without
// `**` or a `>` segment maps to NATS and back to itself.
//
// Example:
//
//   std::string topic;
//   absl::Status s = SubjectToTopic("orders.*.>", SubjectUse::kSubscribe,
//   topic);
//   // topic == "orders/*/*/**"
//   std::string subject;
//   TopicToSubject("spBv1.0/plant", subject);   // subject == "spBv1//0.plant"

#ifndef MANIFOLD_CORE_NATS_SUBJECT_H_
#define MANIFOLD_CORE_NATS_SUBJECT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace manifold::nats {

// What a subject is used for: it decides whether wildcards are allowed and
// which error code a bad subject gets.
enum class SubjectUse {
  kSubscribe,  // SUB: wildcards allowed; errors are INVALID_PATTERN
  kPublish,    // PUB/HPUB subject: literal only; errors are INVALID_TOPIC
  kReply,      // reply subject: literal only; errors are INVALID_TOPIC
};

// Writes the Manifold topic for NATS `subject` into `topic` (replacing its
// contents). Returns INVALID_PATTERN (kSubscribe) or INVALID_TOPIC (otherwise)
// naming the subject and the token at fault when it has no Manifold form. The
// result may still fail the broker's topic validation (length, depth,
// characters), which reports it in the same terms.
absl::Status SubjectToTopic(absl::string_view subject, SubjectUse use,
                            std::string& topic);

// Appends the NATS subject for Manifold `topic` to `subject`.
// REQUIRES: `topic` is a valid Manifold topic or pattern.
void AppendSubjectForTopic(absl::string_view topic, std::string& subject);

// Returns the size of the NATS subject for `topic`.
size_t SubjectSizeForTopic(absl::string_view topic);

// Writes the NATS subject for `topic` at `out`, which must have room for
// SubjectSizeForTopic(topic) bytes, and returns the end of what it wrote.
char* WriteSubjectForTopic(absl::string_view topic, char* out);

}  // namespace manifold::nats

#endif  // MANIFOLD_CORE_NATS_SUBJECT_H_
