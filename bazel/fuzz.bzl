"""fuzz_corpus_test: a libFuzzer target replaying its seed corpus as a test."""

def fuzz_corpus_test(name, deps = []):
    """Builds fuzz/<name>.cc with fuzz/standalone_main.cc as `<name>_test`.

    The test runs every file in fuzz/corpus/<corpus name>/, where the corpus
    name is `name` without its "_fuzzer" suffix.
    """
    corpus = name[:-len("_fuzzer")] if name.endswith("_fuzzer") else name
    files = native.glob(["corpus/%s/*" % corpus])
    native.cc_test(
        name = name + "_test",
        size = "small",
        srcs = [name + ".cc", "standalone_main.cc"],
        args = ["$(rootpath %s)" % f for f in files],
        data = files,
        deps = deps + [
            "@system//:absl",
            "@system//:protobuf",
        ],
    )
