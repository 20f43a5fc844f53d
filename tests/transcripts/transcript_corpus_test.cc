// Replays every transcript under tests/transcripts/ as its own test case, so
// each shows up by name in the test output:
//
//   TranscriptCorpus.pubsub_wildcards
//   TranscriptCorpus.services_timeout ...
//
// Usage: transcript_corpus_test DIRECTORY [gtest flags]

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "broker/transcript/transcript_runner.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

class TranscriptTest : public ::testing::Test {
 public:
  explicit TranscriptTest(std::string path) : path_(std::move(path)) {}

  void TestBody() override {
    std::ifstream in(path_);
    ASSERT_TRUE(in) << "cannot read " << path_;
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<transcript::Transcript> t = ParseTranscript(text.str());
    ASSERT_TRUE(t.ok()) << path_ << ": " << t.status().message();
    ASSERT_GT(t->step_size(), 0) << path_ << " has no steps";
    absl::Status result = ReplayTranscript(*t, StandardReplayOptions());
    // A build without an optional front end (the web one) cannot replay its
    // sessions; say so instead of failing.
    if (absl::IsInvalidArgument(result) &&
        absl::StrContains(result.message(), "unknown protocol")) {
      GTEST_SKIP() << path_ << ": " << result.message()
                   << " (not in this build)";
    }
    EXPECT_TRUE(result.ok()) << path_ << "\n" << result.message();
  }

 private:
  std::string path_;
};

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // The directory comes from the command line, or from the build system
  // (ctest lists the tests before it passes any argument).
#ifdef MANIFOLD_TRANSCRIPTS_DIR
  const char* default_dir = MANIFOLD_TRANSCRIPTS_DIR;
#else
  const char* default_dir = nullptr;
#endif
  if (argc < 2 && default_dir == nullptr) {
    std::fprintf(stderr, "usage: %s TRANSCRIPT_DIRECTORY\n", argv[0]);
    return 2;
  }
  std::filesystem::path dir(argc >= 2 ? argv[1] : default_dir);
  // Bazel passes a file inside the directory; accept either.
  if (!std::filesystem::is_directory(dir)) dir = dir.parent_path();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".textpb") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no .textpb files in %s\n", dir.c_str());
    return 2;
  }
  for (const auto& file : files) {
    const std::string name = file.stem().string();
    const std::string path = file.string();
    ::testing::RegisterTest("TranscriptCorpus", name.c_str(), nullptr, nullptr,
                            path.c_str(), 0, [path]() -> ::testing::Test* {
                              return new manifold::TranscriptTest(path);
                            });
  }
  return RUN_ALL_TESTS();
}
