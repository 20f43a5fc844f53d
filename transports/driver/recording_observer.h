// File: transports/driver/recording_observer.h
// -----------------------------------------------------------------------------
//
// Records a live session as a transcript (broker/transcript/) while a
// BrokerDriver runs: every link opened, every byte received, every turn,
// every byte written and every close, with their times. The transcript
// replays to the same output byte for byte (`manifold replay FILE`), so a
// problem seen on a live broker becomes a test by copying one file.
//
// Recording costs nothing when it is off: the driver only calls an observer
// it was given. When on, it keeps the transcript in memory; write ToText()
// out when the session ends.
//
// Example (what `manifoldd --record FILE` does):
//
//   RecordingObserver recorder("recorded by manifoldd");
//   SocketServerOptions options;
//   options.driver.observer = &recorder;
//   ... run the server until it shuts down ...
//   WriteFile(path, recorder.ToText());

#ifndef MANIFOLD_TRANSPORTS_DRIVER_RECORDING_OBSERVER_H_
#define MANIFOLD_TRANSPORTS_DRIVER_RECORDING_OBSERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/transcript/transcript_recorder.h"
#include "transports/driver/driver_observer.h"

namespace manifold {

class RecordingObserver : public DriverObserver {
 public:
  // `description` becomes the transcript's description.
  explicit RecordingObserver(std::string description);

  // Records each session token drawn, so that the replay's broker draws
  // the same ones.
  std::unique_ptr<SessionIdSource> WrapSessionIds(
      std::unique_ptr<SessionIdSource> source) override;
  void OnAttach(Broker& broker) override;
  void OnOpen(ConnectionId id, const PeerInfo& peer, absl::string_view protocol,
              absl::Time now) override;
  void OnInput(ConnectionId id, absl::string_view bytes,
               absl::Time now) override;
  void OnOutput(ConnectionId id, absl::Span<const absl::string_view> chunks,
                size_t bytes, absl::Time now) override;
  void OnClose(ConnectionId id, absl::string_view reason,
               absl::Time now) override;
  void OnTurn(absl::Time now) override;
  void OnShutdown(absl::Time now) override;

  // The transcript recorded so far, in text form. Output the broker queued
  // but no peer has taken yet is included as expectations.
  std::string ToText();
  // Steps recorded so far.
  size_t steps() const;

 private:
  // Creates the recorder on the first event, so the transcript's clock
  // starts at the session's first moment.
  TranscriptRecorder& Recorder(absl::Time now);

  std::string description_;
  Broker* broker_ = nullptr;
  std::unique_ptr<TranscriptRecorder> recorder_;
  // Input arrived since the last recorded Process.
  bool input_pending_ = false;
  // Session tokens drawn before the recorder existed, for it to take.
  std::vector<std::vector<uint8_t>> early_session_ids_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_RECORDING_OBSERVER_H_
