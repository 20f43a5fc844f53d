#include "transports/sockets/sigpipe_blocked.h"

#include <pthread.h>
#include <time.h>

namespace manifold {

SigpipeBlocked::SigpipeBlocked() {
  sigemptyset(&pipe_);
  sigaddset(&pipe_, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
}

SigpipeBlocked::~SigpipeBlocked() {
  const timespec zero = {0, 0};
  while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

}  // namespace manifold
