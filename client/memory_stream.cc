#include "client/memory_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace manifold {
namespace {

class MemoryStream : public ByteStream {
 public:
  MemoryStream(std::unique_ptr<MemoryLink> link, std::string peer)
      : link_(std::move(link)), peer_(std::move(peer)) {}

  absl::Status Write(absl::string_view bytes) override {
    return link_->Write(bytes);
  }
  absl::StatusOr<std::string> Read(absl::Time deadline) override {
    return link_->Read(deadline);
  }
  void Close() override { link_->Close(); }
  std::string peer() const override { return peer_; }

 private:
  const std::unique_ptr<MemoryLink> link_;
  const std::string peer_;
};

}  // namespace

std::unique_ptr<ByteStream> MakeMemoryStream(std::unique_ptr<MemoryLink> link,
                                             std::string peer_name) {
  return std::make_unique<MemoryStream>(std::move(link),
                                        absl::StrCat("memory:", peer_name));
}

absl::StatusOr<std::unique_ptr<Client>> ConnectInMemory(MemoryBroker& broker,
                                                        ClientOptions options) {
  const std::string name = options.name.empty() ? "client" : options.name;
  return Client::Connect(MakeMemoryStream(broker.Connect(name), name),
                         std::move(options));
}

}  // namespace manifold
