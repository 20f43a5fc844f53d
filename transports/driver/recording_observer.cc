#include "transports/driver/recording_observer.h"

#include <utility>

#include "broker/transcript/recorded_session_ids.h"

namespace manifold {

RecordingObserver::RecordingObserver(std::string description)
    : description_(std::move(description)) {}

std::unique_ptr<SessionIdSource> RecordingObserver::WrapSessionIds(
    std::unique_ptr<SessionIdSource> source) {
  return RecordSessionIds(
      std::move(source), [this](absl::Span<const uint8_t> bytes) {
        if (recorder_ != nullptr) {
          recorder_->SessionIdDrawn(bytes);
        } else {
          early_session_ids_.emplace_back(bytes.begin(), bytes.end());
        }
      });
}

void RecordingObserver::OnAttach(Broker& broker) { broker_ = &broker; }

TranscriptRecorder& RecordingObserver::Recorder(absl::Time now) {
  if (recorder_ == nullptr) {
    recorder_ = std::make_unique<TranscriptRecorder>(broker_->options(), now,
                                                     description_);
    for (const std::vector<uint8_t>& bytes : early_session_ids_) {
      recorder_->SessionIdDrawn(bytes);
    }
    early_session_ids_.clear();
  }
  return *recorder_;
}

void RecordingObserver::OnOpen(ConnectionId id, const PeerInfo& peer,
                               absl::string_view protocol, absl::Time now) {
  if (broker_ == nullptr) return;
  if (const Connection* c = broker_->FindConnection(id)) {
    Recorder(now).Accepted(*c, now);
  }
}

void RecordingObserver::OnInput(ConnectionId id, absl::string_view bytes,
                                absl::Time now) {
  if (broker_ == nullptr) return;
  Recorder(now).Received(id, bytes, now);
  input_pending_ = true;
}

void RecordingObserver::OnTurn(absl::Time now) {
  if (broker_ == nullptr) return;
  // The driver calls Process and Tick on every turn. Only those that can do
  // something are recorded: Process after input arrived, Tick when a timer
  // is due (Process schedules no timer due before `now`).
  if (input_pending_) {
    Recorder(now).Processed(now);
    input_pending_ = false;
  }
  if (std::optional<absl::Time> due = broker_->NextDeadline();
      due.has_value() && *due <= now) {
    Recorder(now).Ticked(now);
  }
}

void RecordingObserver::OnOutput(ConnectionId id,
                                 absl::Span<const absl::string_view> chunks,
                                 size_t bytes, absl::Time now) {
  if (broker_ == nullptr || recorder_ == nullptr) return;
  if (const Connection* c = broker_->FindConnection(id)) {
    recorder_->Written(*c, bytes);
  }
}

void RecordingObserver::OnClose(ConnectionId id, absl::string_view reason,
                                absl::Time now) {
  if (broker_ == nullptr || recorder_ == nullptr) return;
  if (const Connection* c = broker_->FindConnection(id)) {
    recorder_->Closing(*c, reason, now);
  }
}

void RecordingObserver::OnShutdown(absl::Time now) {
  if (broker_ == nullptr) return;
  Recorder(now).ShutDown(now);
}

std::string RecordingObserver::ToText() {
  if (recorder_ == nullptr) return "";
  recorder_->CaptureOutput(*broker_);
  return recorder_->ToText();
}

size_t RecordingObserver::steps() const {
  return recorder_ == nullptr ? 0 : recorder_->steps();
}

}  // namespace manifold
