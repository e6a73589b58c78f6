#!/usr/bin/env bash
# Builds and runs one libFuzzer target: tools/fuzz/run.sh NAME [SECONDS] [extra libFuzzer flags…]
#
# A target is a directory tools/fuzz/NAME/ with
#   main.swift  defines LLVMFuzzerTestOneInput via @_cdecl
#   sources     optional: files to compile with it, one per line (default: all of HDFormats): a bare
#               name is in Sources/HDFormats/, a path with a slash (HDTokenizer/Vocabulary.swift) is
#               under Sources/; compiling the sources into the fuzzer's own module lets it reach
#               internal code and keeps the build free of SwiftPM
#   seeds/      optional: initial corpus (copied into the working corpus, never modified)
#   dict        optional: libFuzzer dictionary
# The binary, working corpus and any crash files go to .build-fuzz/NAME/. Exit status is libFuzzer's:
# 0 when the time ran out without a finding.
set -euo pipefail

name=${1:?usage: tools/fuzz/run.sh NAME [SECONDS] [libFuzzer flags…]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))

root=$(cd "$(dirname "$0")/../.." && pwd)
target="$root/tools/fuzz/$name"
[[ -f "$target/main.swift" ]] || { echo "no fuzz target at $target/main.swift" >&2; exit 2; }
work="$root/.build-fuzz/$name"
mkdir -p "$work/corpus" "$work/artifacts"

sources=()
if [[ -f "$target/sources" ]]; then
    while read -r f; do
        [[ -z "$f" || "$f" == \#* ]] && continue
        if [[ "$f" == */* ]]; then sources+=("$root/Sources/$f"); else sources+=("$root/Sources/HDFormats/$f"); fi
    done < "$target/sources"
else
    sources=("$root"/Sources/HDFormats/*.swift)
fi

# Everything compiles as one module, so the project's own imports (`import HDErrors`, …) are dropped
# from copies of the sources, and HDErrors (every module's error type) always comes along.
sources+=("$root/Sources/HDErrors/TypedError.swift")
rm -rf "$work/src" && mkdir -p "$work/src"
flat=()
for f in "${sources[@]}"; do
    copy="$work/src/$(basename "$(dirname "$f")")_$(basename "$f")"
    grep -Ev '^import (HDErrors|HDFormats|HDTokenizer|HDModel|HDTensor|HDTasks)$' "$f" > "$copy"
    flat+=("$copy")
done
echo "building $work/fuzzer from ${#flat[@]} sources" >&2
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HDFormats \
    -I "$root/Sources/CZlib" -lz \
    "${flat[@]}" "$target/main.swift" -o "$work/fuzzer"

if [[ -d "$target/seeds" ]]; then cp -n "$target"/seeds/* "$work/corpus/" 2>/dev/null || true; fi
flags=(-max_total_time="$seconds" -artifact_prefix="$work/artifacts/" -print_final_stats=1)
[[ -f "$target/dict" ]] && flags+=(-dict="$target/dict")
# Swift's own crash backtracer and AddressSanitizer trip over each other on a finding (the process
# hangs): libFuzzer's report is the one wanted.
export SWIFT_BACKTRACE=enable=no
exec "$work/fuzzer" "${flags[@]}" "$@" "$work/corpus"
