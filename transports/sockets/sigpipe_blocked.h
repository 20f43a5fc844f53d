// File: transports/sockets/sigpipe_blocked.h
// -----------------------------------------------------------------------------
//
// A scope during which SIGPIPE is blocked on the calling thread, so a write
// to a pipe or socket whose reader has gone away fails with EPIPE instead of
// killing the process. Code that writes with plain write() (libuv, a child
// process's stdin) needs it; sendmsg(MSG_NOSIGNAL) in socket_io.h does not.
// A SIGPIPE raised while the scope is open is consumed before the thread's
// previous signal mask comes back, so it is never delivered late.
//
// Example:
//
//   {
//     SigpipeBlocked sigpipe_blocked;
//     ::write(child_stdin, data, size);  // -1 with EPIPE if the child quit
//   }

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_SIGPIPE_BLOCKED_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_SIGPIPE_BLOCKED_H_

#include <signal.h>

namespace manifold {

class SigpipeBlocked {
 public:
  // Blocks SIGPIPE on this thread and remembers the previous mask.
  SigpipeBlocked();
  // Discards any SIGPIPE raised meanwhile, then restores the previous mask.
  // REQUIRES: destroyed on the thread that created it.
  ~SigpipeBlocked();

  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_SIGPIPE_BLOCKED_H_
