#!/usr/bin/env python3
"""Fails when the Bazel and CMake builds list different files.

Bazel is the primary build; CMakeLists.txt mirrors it. This reads the
BUILD.bazel files by evaluating them as Python with stub rules (Starlark's
syntax is a subset of Python's), reads the `set(<target>_SRCS ...)` and
`set(<target>_HDRS ...)` lists of the CMake files, and compares, per target:

  arena/BUILD.bazel          every cc_library  <->  CMakeLists.txt
                             <name>_SRCS + <name>_HDRS
  tests/BUILD.bazel          every cc_test that needs only the library
                             <->  ARENA_TESTS_GTEST_MAIN / ARENA_TESTS_OWN_MAIN
  examples/beast_server/     every cc_binary/cc_library  <->  its CMakeLists.txt

It also checks that the API headers CMake installs are library headers,
and warns about source files on disk that no build lists. A CMake target whose files do not exist yet (guarded by
if(EXISTS ...)) and which Bazel does not have is skipped.

Usage: tools/check_build_sync.py [--root DIR]. Exit 0 in sync, 1 drift.
"""
import argparse
import glob
import os
import re
import sys

# Dependencies a library-only test may have (tests/BUILD.bazel labels).
LIBRARY_TEST_DEPS = {":test_util", "//arena", "//arena:arena", "//arena:testing",
                     "//arena:shared_arena", "@tbb", "@absl", "@gtest", "@gtest_main"}

# (BUILD file, CMake file, path prefix of the CMake entries)
TARGET_MAPS = [
    ("arena/BUILD.bazel", "CMakeLists.txt", "arena/"),
    ("examples/beast_server/BUILD.bazel", "examples/beast_server/CMakeLists.txt", ""),
]


def eval_build(path):
    """Returns [(rule kind, kwargs)] of a BUILD file."""
    rules = []
    env = {}

    def rule(kind):
        def record(*args, **kwargs):
            rules.append((kind, kwargs))
        return record

    class Loaded(list):
        """A name from load(): an empty list (copts) that is also callable
        (a macro, recorded under its own name)."""

        def __init__(self, name):
            super().__init__()
            self.name = name

        def __call__(self, *args, **kwargs):
            rules.append((self.name, kwargs))

    def load(label, *names, **aliases):
        for n in list(names) + list(aliases):
            env.setdefault(n, Loaded(n))

    def glob_(include, exclude=(), **_):
        base = os.path.dirname(path)
        out = set()
        for pattern in include:
            for f in glob.glob(os.path.join(base, pattern), recursive=True):
                out.add(os.path.relpath(f, base))
        for pattern in exclude:
            for f in glob.glob(os.path.join(base, pattern), recursive=True):
                out.discard(os.path.relpath(f, base))
        return sorted(out)

    env.update({
        "load": load, "glob": glob_, "select": lambda d, **_: sum(d.values(), []),
        "package": lambda **_: None, "exports_files": lambda *a, **k: None,
        "licenses": lambda *a, **k: None,
    })
    for kind in ("cc_library", "cc_binary", "cc_test", "sh_test", "sh_binary",
                 "sh_library", "py_binary", "py_test", "filegroup", "genrule",
                 "test_suite", "alias", "config_setting"):
        env[kind] = rule(kind)
    with open(path) as f:
        source = f.read()
    try:
        exec(compile(source, path, "exec"), env)
    except NameError as e:
        sys.exit(f"check_build_sync: cannot evaluate {path}: {e} (add the rule to "
                 "tools/check_build_sync.py)")
    return rules


def parse_cmake(path):
    """Returns {variable: [values]} from set(...) and list(APPEND ...)."""
    with open(path) as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    variables = {}

    def expand(tokens):
        out = []
        for t in tokens:
            m = re.fullmatch(r"\$\{(\w+)\}", t)
            out.extend(variables.get(m.group(1), []) if m else [t])
        return out

    for m in re.finditer(r"\b(set|list)\s*\(\s*(APPEND\s+)?(\w+)\s*([^)]*)\)", text):
        command, append, name, body = m.groups()
        if command == "list" and not append:
            continue
        values = expand(body.split())
        if append:
            variables.setdefault(name, []).extend(values)
        else:
            variables[name] = values
    return variables


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    root = os.path.abspath(parser.parse_args().root)
    os.chdir(root)
    errors, warnings = [], []
    bazel_files = set()

    for build, cmake, prefix in TARGET_MAPS:
        if not os.path.exists(build):
            continue
        if not os.path.exists(cmake):
            errors.append(f"{build} exists but {cmake} does not")
            continue
        base = os.path.dirname(build)
        cmake_vars = parse_cmake(cmake)
        bazel_targets = {}
        for kind, kw in eval_build(build):
            if kind in ("cc_library", "cc_binary", "cc_test"):
                files = {os.path.normpath(os.path.join(base, s))
                         for s in kw.get("srcs", []) + kw.get("hdrs", [])
                         if not s.startswith(":") and not s.startswith("/")}
                bazel_targets[kw["name"]] = files
                bazel_files |= files
        cmake_targets = {}
        for var, values in cmake_vars.items():
            m = re.fullmatch(r"(\w+)_(SRCS|HDRS)", var)
            if not m:
                continue
            files = {os.path.normpath(os.path.join(os.path.dirname(cmake), v))
                     for v in values if re.search(r"\.(cc|cpp|c|h|hpp|inc)$", v)}
            cmake_targets.setdefault(m.group(1), set()).update(files)
        for name in sorted(set(bazel_targets) | set(cmake_targets)):
            b = bazel_targets.get(name)
            c = cmake_targets.get(name)
            label = f"//{base}:{name}"
            if b is None:
                if any(os.path.exists(f) for f in c):
                    errors.append(f"{cmake}: {name}_SRCS/_HDRS has no Bazel target {label}")
                else:
                    print(f"note: {cmake}: {name} (files not written yet, no Bazel target) skipped")
                continue
            if c is None:
                errors.append(f"{label} has no {name}_SRCS/{name}_HDRS in {cmake}")
                continue
            for f in sorted(b - c):
                errors.append(f"{f}: in Bazel {label}, missing from {cmake} {name}_SRCS/_HDRS")
            for f in sorted(c - b):
                errors.append(f"{f}: in {cmake} {name}_SRCS/_HDRS, missing from Bazel {label}")
            for f in sorted(b | c):
                if not os.path.exists(f):
                    errors.append(f"{f}: listed by {label} but not on disk")

    # Library-only test suites.
    cmake_vars = parse_cmake("CMakeLists.txt")
    cm_main = set(cmake_vars.get("ARENA_TESTS_GTEST_MAIN", []))
    cm_own = set(cmake_vars.get("ARENA_TESTS_OWN_MAIN", []))
    cm_shared = set(cmake_vars.get("ARENA_TESTS_SHARED_ARENA", []))
    bz_main, bz_own, bz_shared = set(), set(), set()
    for kind, kw in eval_build("tests/BUILD.bazel"):
        if kind != "cc_test":
            continue
        deps = set(kw.get("deps", []))
        if not deps <= LIBRARY_TEST_DEPS or kw.get("data"):
            continue  # server/CLI suites: Bazel-only
        name = kw["name"]
        srcs = kw.get("srcs", [])
        if name + ".cc" not in srcs or any(not s.endswith(".h") for s in srcs
                                           if s != name + ".cc"):
            errors.append(f"tests/BUILD.bazel {name}: srcs {srcs} is not {name}.cc plus "
                          "headers, which CMakeLists.txt assumes")
        (bz_main if "@gtest_main" in deps else bz_own).add(name)
        if "//arena:shared_arena" in deps:
            bz_shared.add(name)
    for name in sorted(bz_main - cm_main):
        errors.append(f"test {name}: gtest_main suite in tests/BUILD.bazel, "
                      "missing from ARENA_TESTS_GTEST_MAIN")
    for name in sorted(bz_own - cm_own):
        errors.append(f"test {name}: own-main suite in tests/BUILD.bazel, "
                      "missing from ARENA_TESTS_OWN_MAIN")
    for name in sorted(cm_main - bz_main):
        errors.append(f"test {name}: in ARENA_TESTS_GTEST_MAIN, not a gtest_main "
                      "library suite in tests/BUILD.bazel")
    for name in sorted(cm_own - bz_own):
        errors.append(f"test {name}: in ARENA_TESTS_OWN_MAIN, not an own-main "
                      "library suite in tests/BUILD.bazel")

    for name in sorted(bz_shared ^ cm_shared):
        errors.append(f"test {name}: depends on //arena:shared_arena in one build only "
                      "(ARENA_TESTS_SHARED_ARENA in CMakeLists.txt)")

    # The API headers CMake installs (with the internal ones they include)
    # must be headers of a library target.
    all_hdrs = set(cmake_vars.get("arena_HDRS", [])) | set(cmake_vars.get("shared_arena_HDRS", []))
    for h in cmake_vars.get("ARENA_API_HEADERS", []):
        if h not in all_hdrs:
            errors.append(f"{h}: in ARENA_API_HEADERS, not a header of arena or shared_arena")

    # Files on disk that no Bazel target lists (new work in progress?).
    for f in sorted(glob.glob("arena/**/*.cc", recursive=True) +
                    glob.glob("arena/**/*.h", recursive=True)):
        if os.path.normpath(f) not in bazel_files:
            warnings.append(f"{f}: on disk, in no cc_library of arena/BUILD.bazel")

    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    if errors:
        print(f"check_build_sync: {len(errors)} difference(s) between Bazel and CMake; "
              "edit CMakeLists.txt to match the BUILD.bazel files")
        return 1
    print("check_build_sync: Bazel and CMake list the same files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
