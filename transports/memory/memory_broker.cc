#include "transports/memory/memory_broker.h"

#include <utility>

#include "transports/memory/internal/memory_loop.h"
#include "transports/memory/internal/memory_pipe.h"

namespace manifold {
namespace {

// Bytes a link buffers in each direction.
constexpr size_t kLinkCapacity = 256 * 1024;

}  // namespace

MemoryBroker::MemoryBroker(BrokerOptions options)
    : doorbell_(std::make_shared<memory_internal::Doorbell>()),
      loop_(std::make_unique<memory_internal::MemoryLoop>(std::move(options),
                                                          doorbell_)),
      thread_([this] { loop_->Run(); }) {}

MemoryBroker::~MemoryBroker() {
  doorbell_->RequestStop();
  thread_.join();
}

std::unique_ptr<MemoryLink> MemoryBroker::Connect(
    absl::string_view peer_name, std::unique_ptr<ProtocolCodec> codec,
    std::unique_ptr<LinkSecurity> security) {
  auto pipe = std::make_shared<memory_internal::MemoryPipe>(
      std::string(peer_name), doorbell_, kLinkCapacity);
  pipe->set_codec(std::move(codec));
  pipe->set_security(std::move(security));
  if (!doorbell_->Post(pipe)) pipe->BrokerClose();
  return std::unique_ptr<MemoryLink>(new MemoryLink(std::move(pipe)));
}

MemoryLink::MemoryLink(std::shared_ptr<memory_internal::MemoryPipe> pipe)
    : pipe_(std::move(pipe)) {}

MemoryLink::~MemoryLink() { Close(); }

absl::Status MemoryLink::Write(absl::string_view bytes) {
  return pipe_->ClientWrite(bytes);
}

absl::StatusOr<std::string> MemoryLink::Read(absl::Time deadline) {
  return pipe_->ClientRead(deadline);
}

void MemoryLink::Close() { pipe_->ClientClose(); }

}  // namespace manifold
