#include "transports/tls/internal/openssl_errors.h"

#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace manifold {

std::string TakeOpenSslErrors() {
  std::string text;
  const char* file = nullptr;
  int line = 0;
  while (unsigned long code =
             ERR_get_error_all(&file, &line, nullptr, nullptr, nullptr)) {
    const char* reason = ERR_reason_error_string(code);
    absl::StrAppend(&text, text.empty() ? "" : "; ",
                    reason != nullptr ? reason : "unknown reason");
  }
  return text.empty() ? "unknown error" : text;
}

}  // namespace manifold
