// manifoldd: the Manifold broker over TCP and Unix-domain sockets.
//
//   manifoldd                                   # 127.0.0.1:24387, epoll
//   manifoldd --listen 127.0.0.1:0 --unix /tmp/manifold.sock
//   manifoldd --max_connections 1000 --slow_consumer_policy drop
//   manifoldd --nats 127.0.0.1:4222            # also speak NATS
//   manifoldd --config manifoldd.textpb         # settings from a file
//   manifoldd --print_config > manifoldd.textpb # every setting, to edit
//   manifoldd --record /tmp/session.textpb      # write a transcript on exit
//   manifoldd --user alice --pass '$y$...'      # connections must log in
//   manifoldd --cluster redis://127.0.0.1:6379 --node n1   # join a cluster
//
// Prints one line saying where it listens, logs connections on stderr, and on
// SIGINT/SIGTERM tells every client Goodbye and exits 0. A configuration
// error (a bad flag, a bad configuration file) is one line on stderr and exit
// status 2; a failure to run (an address in use) one line and exit status 1.

#include <malloc.h>
#include <openssl/rand.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/auth/password_hash.h"
#include "core/config/config_file.h"
#include "examples/tcp_broker/admission.h"
#include "examples/tcp_broker/manifoldd_config.h"
#include "examples/tcp_broker/server_signals.h"
#include "transports/driver/recording_observer.h"
#include "transports/loops/event_loops.h"
#ifdef MANIFOLD_HAVE_ROCKSDB
#include "transports/storage/rocksdb_stream_storage.h"
#endif
#ifdef MANIFOLD_HAVE_CLUSTER
#include "transports/cluster/redis_cluster_link.h"
#endif

namespace {

// Exit statuses: a configuration that cannot be used, and a failure to run.
constexpr int kBadConfiguration = 2;
constexpr int kFailed = 1;

// A busy broker's output swings by megabytes every turn: fan-out fills every
// subscriber's OutboundBuffer, the sockets drain them, and the next turn
// fills them again. glibc returns freed memory at the top of the heap to the
// kernel once more than 128 KiB of it is free, so each turn paid for brk()
// and for faulting in and zeroing the same pages again (a sixth of the
// server's time in a WebSocket fan-out to 64 subscribers). Keep up to
// kKeptFreeBytes of freed memory for reuse instead; allocations below
// kMmapThresholdBytes come from that heap rather than fresh mappings.
constexpr int kKeptFreeBytes = 64 << 20;
constexpr int kMmapThresholdBytes = 4 << 20;

void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kKeptFreeBytes);
}

int Fail(absl::string_view message, int status = kFailed) {
  std::fprintf(stderr, "manifoldd: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return status;
}

// `n` bytes from OpenSSL's generator (seeded by the kernel).
absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(n)) != 1) {
    return absl::InternalError("no random bytes from OpenSSL");
  }
  return bytes;
}

// SIGHUP: reads the configuration again (the same --config file and flags)
// and applies what can change while running: users, tokens, permissions,
// the login throttle's settings, and the TLS certificate, key and CA files.
// Anything else needs a restart.
void Reload(absl::Span<const char* const> args,
            const manifold::ServerConfig& running,
            const manifold::ServerSetup& setup, manifold::Admission* admission,
            manifold::BrokerDriver& driver, const manifold::Logger& log) {
  absl::StatusOr<manifold::ManifolddCommandLine> reread =
      manifold::ParseManifolddCommandLine(args);
  if (!reread.ok()) {
    log.Log(manifold::LogLevel::kError,
            absl::StrCat("reload failed, the running configuration stays: ",
                         reread.status().message()));
    return;
  }
  const bool wants_auth = manifold::AuthenticationConfigured(reread->config);
  if (wants_auth != (admission != nullptr)) {
    log.Log(manifold::LogLevel::kError,
            "reload failed, the running configuration stays: turning "
            "authentication on or off needs a restart");
    return;
  }
  if (admission != nullptr) {
    absl::StatusOr<std::string> salt =
        RandomBytes(manifold::kPasswordSaltBytes);
    absl::StatusOr<manifold::AuthConfig> auth =
        salt.ok() ? manifold::EffectiveAuthConfig(reread->config, *salt)
                  : absl::StatusOr<manifold::AuthConfig>(salt.status());
    absl::Status reloaded =
        auth.ok() ? admission->Reload(*auth, driver) : auth.status();
    if (!reloaded.ok()) {
      log.Log(manifold::LogLevel::kError,
              absl::StrCat("reload failed, the running configuration stays: "
                           "auth: ",
                           reloaded.message()));
      return;
    }
  }
  // New connections get the certificate and key files as they are now.
  if (absl::Status tls = manifold::ReloadTls(setup); !tls.ok()) {
    log.Log(manifold::LogLevel::kError,
            absl::StrCat("reload: TLS files not reloaded, the ones in use "
                         "stay: ",
                         tls.message()));
  }
  // The settings a reload does not apply, as bytes to compare.
  auto not_reloaded = [](manifold::ServerConfig config) {
    config.clear_auth();
    config.clear_user();
    config.clear_pass();
    config.clear_token();
    return config.SerializeAsString();
  };
  log.Log(
      manifold::LogLevel::kInfo,
      absl::StrCat("reloaded the configuration",
                   admission != nullptr
                       ? absl::StrCat(": ", reread->config.auth().users_size(),
                                      " configured users")
                       : "",
                   not_reloaded(running) == not_reloaded(reread->config)
                       ? ""
                       : "; other changed settings take effect at the "
                         "next restart"));
}

// With authentication configured: who checks each login.
// `wake` wakes the loop when a password check finishes on the worker.
absl::StatusOr<std::unique_ptr<manifold::Admission>> MakeAdmission(
    const manifold::ServerConfig& config, std::function<void()> wake) {
  absl::StatusOr<std::string> salt = RandomBytes(manifold::kPasswordSaltBytes);
  if (!salt.ok()) return salt.status();
  absl::StatusOr<manifold::AuthConfig> auth =
      manifold::EffectiveAuthConfig(config, *salt);
  if (!auth.ok()) return auth.status();
  absl::StatusOr<std::string> cache_key = RandomBytes(32);
  if (!cache_key.ok()) return cache_key.status();
  absl::StatusOr<std::unique_ptr<manifold::Admission>> admission =
      manifold::Admission::Create(*auth, *cache_key, std::move(wake));
  if (!admission.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth: ", admission.status().message()));
  }
  return admission;
}

#ifdef MANIFOLD_HAVE_CLUSTER
// --cluster and --node as the cluster link's options. The incarnation (the
// wall clock in microseconds) tells this run from an earlier one of the same
// node. Returns INVALID_ARGUMENT naming the flag at fault.
absl::StatusOr<manifold::RedisClusterLinkOptions> ClusterLinkOptions(
    const manifold::ServerConfig& config, const manifold::Logger& log) {
  absl::StatusOr<manifold::Endpoint> redis =
      manifold::ParseRedisUrl(config.cluster());
  if (!redis.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster: ", redis.status().message()));
  }
  manifold::RedisClusterLinkOptions options;
  options.redis = *std::move(redis);
  options.cluster.node = config.node();
  for (absl::string_view spec :
       absl::StrSplit(config.redis_bridge(), ',', absl::SkipEmpty())) {
    absl::StatusOr<manifold::RedisBridge> bridge =
        manifold::ParseRedisBridge(spec);
    if (!bridge.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis_bridge: ", bridge.status().message()));
    }
    options.cluster.bridges.push_back(*std::move(bridge));
  }
  options.cluster.incarnation =
      static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  if (absl::Status valid = manifold::ClusterRouter::Validate(options.cluster);
      !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster: ", valid.message()));
  }
  options.logger = log;
  // Whatever the log level: an operator needs to see these.
  options.notify = [](absl::string_view line) {
    std::fprintf(stderr, "manifoldd: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  };
  return options;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  KeepFreedMemoryForReuse();
  // Before any other thread starts: every thread inherits the blocked
  // signals. Until the server runs, a signal ends the process.
  manifold::ServerSignals signals;
  absl::StatusOr<manifold::ManifolddCommandLine> command_line =
      manifold::ParseManifolddCommandLine(
          absl::MakeConstSpan(argv + 1, argc > 0 ? argc - 1 : 0));
  if (!command_line.ok()) {
    return Fail(command_line.status().message(), kBadConfiguration);
  }
  if (command_line->help) {
    std::fputs(manifold::ManifolddHelp().c_str(), stdout);
    return 0;
  }
  if (command_line->print_config) {
    std::fputs(manifold::config::PrintConfig(command_line->config).c_str(),
               stdout);
    return 0;
  }
  absl::StatusOr<manifold::ServerSetup> config =
      manifold::MakeServerSetup(command_line->config);
  if (!config.ok()) return Fail(config.status().message(), kBadConfiguration);
#ifdef MANIFOLD_HAVE_CLUSTER
  std::optional<manifold::RedisClusterLinkOptions> cluster;
  if (!command_line->config.cluster().empty()) {
    absl::StatusOr<manifold::RedisClusterLinkOptions> options =
        ClusterLinkOptions(command_line->config, config->options.driver.logger);
    if (!options.ok()) {
      return Fail(options.status().message(), kBadConfiguration);
    }
    cluster = *std::move(options);
  }
#else
  if (!command_line->config.cluster().empty()) {
    return Fail(
        "--cluster needs hiredis (libhiredis-dev), which this manifoldd was "
        "built without",
        kBadConfiguration);
  }
#endif
  // Declared before the server, which uses them until it is destroyed.
  std::unique_ptr<manifold::Admission> admission;
  manifold::SocketServer* running = nullptr;
  if (config->authenticate) {
    absl::StatusOr<std::unique_ptr<manifold::Admission>> made =
        MakeAdmission(command_line->config, [&running] {
          // Set before the loop runs; checks come only from the loop.
          if (running != nullptr) running->Wake();
        });
    if (!made.ok()) return Fail(made.status().message(), kBadConfiguration);
    admission = *std::move(made);
    config->options.driver.on_event =
        [&admission, &running](const manifold::wire::BrokerEvent& event) {
          if (event.has_connection_pending() && admission != nullptr) {
            admission->OnPending(event.connection_pending(), running->driver());
          }
        };
  }
  const manifold::Logger log = config->options.driver.logger;
  const absl::Span<const char* const> args =
      absl::MakeConstSpan(argv + 1, argc > 0 ? argc - 1 : 0);
  config->options.driver.before_turn = [&](manifold::BrokerDriver& driver) {
    if (admission != nullptr) admission->TakeChecked(driver);
    if (signals.TakeReloadRequest()) {
      Reload(args, command_line->config, *config, admission.get(), driver, log);
    }
  };
  std::unique_ptr<manifold::RecordingObserver> recorder;
  if (!config->record_path.empty()) {
    recorder = std::make_unique<manifold::RecordingObserver>(
        "recorded live by manifoldd");
    config->options.driver.observer = recorder.get();
  }
  // The durable streams' storage, opened (and recovered) before anything
  // listens; declared before the server, which uses it until destroyed.
  std::unique_ptr<manifold::StreamStorage> storage;
  std::vector<manifold::RecoveredStream> held;
  if (!command_line->config.data_dir().empty()) {
#ifndef MANIFOLD_HAVE_ROCKSDB
    return Fail(
        "--data_dir needs RocksDB (librocksdb-dev), which this "
        "manifoldd was built without",
        kBadConfiguration);
#else
    const absl::Time start = absl::Now();
    manifold::RocksDbStreamStorageOptions storage_options;
    storage_options.read_cache_bytes =
        command_line->config.stream_read_cache_bytes();
    storage_options.write_buffer_bytes =
        command_line->config.stream_write_buffer_bytes();
    storage = std::make_unique<manifold::RocksDbStreamStorage>(
        command_line->config.data_dir(),
        [&running] {
          // Set before the loop runs; the storage stops before the server.
          if (running != nullptr) running->Wake();
        },
        storage_options);
    absl::StatusOr<std::vector<manifold::RecoveredStream>> loaded =
        storage->Load();
    if (!loaded.ok()) return Fail(loaded.status().message(), kFailed);
    held = *std::move(loaded);
    uint64_t messages = 0;
    for (const manifold::RecoveredStream& r : held) {
      messages += r.state.messages;
    }
    // On stderr, as the log: stdout's first line says where it listens.
    std::fprintf(stderr,
                 "manifoldd: %zu streams with %llu messages recovered from %s "
                 "in %s\n",
                 held.size(), static_cast<unsigned long long>(messages),
                 command_line->config.data_dir().c_str(),
                 absl::FormatDuration(absl::Now() - start).c_str());
    if (!manifold::RocksDbStreamStorage::checksums_accelerated()) {
      std::fprintf(stderr,
                   "manifoldd: RocksDB computes its checksums in software "
                   "(this build has no ISA-L, libisal-dev): storing large "
                   "messages costs more CPU\n");
    }
#endif
  }
  absl::StatusOr<std::unique_ptr<manifold::SocketServer>> server =
      manifold::MakeSocketServer(config->loop, std::move(config->options));
  if (!server.ok()) {
    // An unknown --loop is a configuration error; a loop the kernel refuses
    // (io_uring disabled) is a failure to run.
    return Fail(
        server.status().message(),
        absl::IsInvalidArgument(server.status()) ? kBadConfiguration : kFailed);
  }

  running = server->get();
  // The admission's worker and the storage's threads wake the server: on
  // every way out they stop first, while the server is still there (a
  // failed OpenStreams() or Listen() returns early).
  absl::Cleanup stop_workers = [&admission, &storage] {
    admission.reset();
    storage.reset();
  };
  {
    const std::vector<manifold::wire::StreamConfig> declared(
        command_line->config.streams().begin(),
        command_line->config.streams().end());
    if (absl::Status s = (*server)->driver().OpenStreams(
            storage.get(), std::move(held), declared);
        !s.ok()) {
      return Fail(s.message(), kBadConfiguration);
    }
  }

  std::vector<std::string> places;
  for (manifold::ListenerConfig& listener : config->listeners) {
    const std::string label(listener.display_label());
    absl::StatusOr<manifold::Endpoint> bound =
        (*server)->Listen(std::move(listener));
    if (!bound.ok()) return Fail(bound.status().message());
    places.push_back(absl::StrCat(bound->ToString(), " (", label, ")"));
  }

#ifdef MANIFOLD_HAVE_CLUSTER
  // Connects from the loop's first turn; destroyed before the server.
  std::unique_ptr<manifold::RedisClusterLink> cluster_link;
  if (cluster) {
    absl::StatusOr<std::unique_ptr<manifold::RedisClusterLink>> link =
        manifold::RedisClusterLink::Create(**server, *std::move(cluster));
    if (!link.ok()) return Fail(link.status().message(), kBadConfiguration);
    cluster_link = *std::move(link);
  }
#endif

  signals.Route(server->get());
  absl::Cleanup unroute = [&signals] { signals.Route(nullptr); };
  std::printf("manifoldd listening on %s, loop %s\n",
              absl::StrJoin(places, ", ").c_str(), config->loop.c_str());
  std::fflush(stdout);

  const absl::Status done = (*server)->Run();
#ifdef MANIFOLD_HAVE_CLUSTER
  cluster_link.reset();
#endif
  // Its worker may still be checking a password and would wake the server:
  // stop it while the server is still there. So for the storage, which
  // finishes what it was given first.
  std::move(stop_workers).Invoke();
  if (recorder != nullptr) {
    std::ofstream out(config->record_path, std::ios::trunc);
    out << recorder->ToText();
    out.close();
    if (!out) {
      return Fail(
          absl::StrCat("cannot write the transcript to ", config->record_path));
    }
    std::fprintf(stderr, "manifoldd: recorded %zu steps to %s\n",
                 recorder->steps(), config->record_path.c_str());
  }
  if (!done.ok()) return Fail(done.message());
  return 0;
}
