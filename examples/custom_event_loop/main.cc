// custom_event_loop: the Manifold broker embedded in a hand-written poll()
// loop. This is the whole integration; copy it into your own loop (a game
// server's tick, a robot's control loop) and keep its six steps, the
// sequence broker/broker.h describes:
//   1. wait for I/O, at most until broker.NextDeadline(), reading only
//      connections that WantsRead()
//   2. accept new peers:           broker.Accept(peer, now)
//   3. hand over what peers sent:  connection->Receive(bytes, now);
//      a peer that hung up:        broker.Close(id, reason, now)
//   4. let the broker work:        broker.Process(now); broker.Tick(now)
//   5. serve what changed:         broker.TakeChanged(ids), then for each
//      PendingOutput() -> writev -> Consume(), and once ShouldClose(),
//      close the socket and broker.Close(id, reason, now)
//   6. optionally, learn who came and went: broker.PollEvent()
// `now` comes from a monotonic clock (steady_clock): the broker's deadlines
// must not move when the wall clock is stepped.
// Usage: custom_event_loop [PORT]   (127.0.0.1; 0, the default, picks a port).
// SIGINT/SIGTERM tell every client Goodbye, then the program exits.

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "core/manifold.pb.h"  // the events PollEvent() returns

using manifold::Broker;
using manifold::Connection;
using manifold::ConnectionId;

namespace {

volatile sig_atomic_t stop_requested = 0;

// A non-blocking listening socket on 127.0.0.1:port; prints where it is.
int Listen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in address{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      listen(fd, 128) != 0) {
    std::perror("custom_event_loop: cannot listen");
    std::exit(1);
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("custom_event_loop listening on 127.0.0.1:%d\n",
              ntohs(address.sin_port));
  return fd;
}

// Writes the connection's pending output until the socket is full. Returns
// false if the peer is gone.
bool Flush(int fd, Connection& c) {
  absl::string_view chunks[16];
  iovec iov[16];
  while (c.PendingOutputBytes() > 0) {
    const size_t n = c.PendingOutput(absl::MakeSpan(chunks));
    for (size_t i = 0; i < n; ++i) {
      iov[i] = {const_cast<char*>(chunks[i].data()), chunks[i].size()};
    }
    const ssize_t written = writev(fd, iov, n);
    if (written < 0) return errno == EAGAIN || errno == EINTR;
    c.Consume(written);  // a partial write leaves the rest for later
  }
  return true;
}

// The time the broker runs on: monotonic, unaffected by wall-clock steps.
absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

// poll()'s timeout for sleeping until `deadline`: whole ms, rounded up.
int TimeoutMs(std::optional<absl::Time> deadline) {
  if (!deadline) return -1;
  return std::max<int64_t>(
      0, absl::ToInt64Milliseconds(*deadline - MonotonicNow()) + 1);
}

}  // namespace

int main(int argc, char** argv) {
  for (int s : {SIGINT, SIGTERM}) signal(s, [](int) { stop_requested = 1; });
  signal(SIGPIPE, SIG_IGN);  // a vanished peer is an EPIPE, not our death
  const int listener = Listen(argc > 1 ? std::atoi(argv[1]) : 0);
  Broker broker;                        // default BrokerOptions
  std::map<ConnectionId, int> sockets;  // the broker's connections -> fds
  std::vector<ConnectionId> changed;
  char buffer[manifold::kMaxReceiveBytes];  // the most one Receive() takes
  auto close_link = [&](ConnectionId id, const char* why, absl::Time now) {
    close(sockets[id]);
    sockets.erase(id);
    broker.Close(id, why, now);  // releases its subscriptions and services
  };

  while (!(broker.shutting_down() && broker.connection_count() == 0)) {
    // 1. Wait. Poll for input only where the broker wants it: that is the
    //    backpressure that keeps a fast sender from filling our memory.
    std::vector<pollfd> fds = {{listener, POLLIN, 0}};
    std::vector<ConnectionId> ids = {ConnectionId()};
    for (const auto& [id, fd] : sockets) {
      Connection* c = broker.FindConnection(id);
      const int events = (c->WantsRead() ? POLLIN : 0) |
                         (c->PendingOutputBytes() > 0 ? POLLOUT : 0);
      fds.push_back({fd, static_cast<short>(events), 0});
      ids.push_back(id);
    }
    std::fflush(stdout);
    poll(fds.data(), fds.size(), TimeoutMs(broker.NextDeadline()));
    const absl::Time now = MonotonicNow();  // the broker never reads a clock
    if (stop_requested && !broker.shutting_down()) broker.Shutdown(now);

    // 2. Accept. (A full or stopping broker hands back a connection that is
    //    already closing, with an error frame to send.)
    sockaddr_in peer{};
    socklen_t length = sizeof(peer);
    const int fd = accept4(listener, reinterpret_cast<sockaddr*>(&peer),
                           &length, SOCK_NONBLOCK);
    if (fd >= 0) {
      const std::string address =
          absl::StrCat(inet_ntoa(peer.sin_addr), ":", ntohs(peer.sin_port));
      sockets[broker.Accept({address}, now).id()] = fd;
    }

    // 3. Hand over what each peer sent; close the ones that hung up.
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        broker.FindConnection(ids[i])->Receive({buffer, size_t(n)}, now);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        close_link(ids[i], "peer closed the connection", now);
      }
    }

    // 4. Route what arrived; fire due timers (keepalive, request timeouts).
    broker.Process(now);
    broker.Tick(now);

    // 5. Write to connections with new output and to those poll() found
    //    writable again; close the ones the broker is done with.
    broker.TakeChanged(changed);
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents & POLLOUT) changed.push_back(ids[i]);
    }
    for (ConnectionId id : changed) {
      Connection* c = broker.FindConnection(id);
      if (c == nullptr) continue;  // closed above
      if (!Flush(sockets[id], *c)) {
        close_link(id, "connection reset by peer", now);
      } else if (c->ShouldClose()) {
        close_link(id, "closed by the broker", now);
      }
    }

    // 6. Events tell the embedder who came and went, subscribed, served...
    while (std::optional<manifold::wire::BrokerEvent> e = broker.PollEvent()) {
      const auto& added = e->connection_added();
      const auto& removed = e->connection_removed();
      if (e->has_connection_added())
        printf("%s connected\n", added.client_name().c_str());
      if (e->has_connection_removed())
        printf("%s left: %s\n", removed.client_name().c_str(),
               removed.reason().c_str());
    }
  }
  return 0;
}
