#include "transports/tls/internal/string_bios.h"

#include <openssl/bio.h>

#include <algorithm>
#include <cstring>

namespace manifold {
namespace {

StringBioBuffers* BuffersOf(BIO* bio) {
  return static_cast<StringBioBuffers*>(BIO_get_data(bio));
}

int ReadInput(BIO* bio, char* out, int size) {
  BIO_clear_retry_flags(bio);
  StringBioBuffers* buffers = BuffersOf(bio);
  if (buffers->input.empty()) {
    BIO_set_retry_read(bio);  // wait for more, as an empty memory BIO does
    return -1;
  }
  const size_t n =
      std::min(buffers->input.size(), static_cast<size_t>(std::max(size, 0)));
  std::memcpy(out, buffers->input.data(), n);
  buffers->input.remove_prefix(n);
  return static_cast<int>(n);
}

int WriteOutput(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  BuffersOf(bio)->output->append(data, static_cast<size_t>(size));
  return size;
}

int Refuse(BIO*, const char*, int) { return -1; }
int RefuseRead(BIO*, char*, int) { return -1; }

long Control(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // every write is already where it goes
    case BIO_CTRL_PENDING:
      return static_cast<long>(BuffersOf(bio)->input.size());
    case BIO_CTRL_WPENDING:
      return 0;
    default:
      return 0;
  }
}

int Create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int Destroy(BIO*) { return 1; }

BIO_METHOD* MakeMethod(const char* name, bool input) {
  BIO_METHOD* method =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  if (method == nullptr) return nullptr;
  BIO_meth_set_read(method, input ? ReadInput : RefuseRead);
  BIO_meth_set_write(method, input ? Refuse : WriteOutput);
  BIO_meth_set_ctrl(method, Control);
  BIO_meth_set_create(method, Create);
  BIO_meth_set_destroy(method, Destroy);
  return method;
}

BIO* NewBio(StringBioBuffers* buffers, bool input) {
  // Made once, used by every session, never freed (as OpenSSL's own).
  static BIO_METHOD* const input_method =
      MakeMethod("manifold TLS input", true);
  static BIO_METHOD* const output_method =
      MakeMethod("manifold TLS output", false);
  BIO_METHOD* method = input ? input_method : output_method;
  if (method == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio != nullptr) BIO_set_data(bio, buffers);
  return bio;
}

}  // namespace

BIO* NewInputBio(StringBioBuffers* buffers) { return NewBio(buffers, true); }

BIO* NewOutputBio(StringBioBuffers* buffers) { return NewBio(buffers, false); }

}  // namespace manifold
