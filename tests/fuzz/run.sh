#!/usr/bin/env bash
# Fuzzes the parsers with afl-fuzz (Debian's afl++) and SharpFuzz, one target at a time, each for a
# bounded time, then prints executions, crashes and hangs per target from afl's fuzzer_stats.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 120 s, every target)
#
# Targets: safetensors config tokenizer csv tsv jsonl parquet. Work files go to tests/fuzz/out/
# (ignored by git): out/bin (the instrumented harness), out/findings/<target> (afl's output;
# crashing inputs in crashes/, hanging ones in hangs/). Reproduce a finding with
#   dotnet tests/fuzz/out/plain/MixupBert.Fuzz.dll <target> --repro FILE...
# (out/plain: the same build, uninstrumented; instrumented code crashes when run outside afl).
# Not part of `dotnet test MixupBert.sln`: the harness project is not in the solution.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-120}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config tokenizer csv tsv jsonl parquet)
out="$here/out"
tools="$here/.tools"

# afl-fuzz from Debian (needs root for apt)
if ! command -v afl-fuzz >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq afl++ >/dev/null
fi

# SharpFuzz's instrumenter, as a local tool (no global install)
if [ ! -x "$tools/sharpfuzz" ]; then
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
fi

# Build, then instrument the parsers' assembly in the published copy (sharpfuzz rewrites it in place)
rm -rf "$out/bin"
dotnet publish "$here/Fuzz.csproj" -c Release -o "$out/bin" -v quiet -nologo >/dev/null
rm -rf "$out/plain" && cp -r "$out/bin" "$out/plain"   # uninstrumented, to reproduce findings outside afl
"$tools/sharpfuzz" "$out/bin/MixupBert.Model.dll"

# Dictionaries of JSON tokens help the JSON-shaped targets get past the parser's first check
json_dict=/usr/share/doc/afl++-doc/afl/dictionaries/json.dict

export AFL_SKIP_BIN_CHECK=1                          # the target is `dotnet`, which afl did not compile
export AFL_NO_UI=1                                   # plain progress lines, for logs
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1       # containers' core_pattern cannot be changed
export AFL_SKIP_CPUFREQ=1
export AFL_NO_AFFINITY=1                             # the machine is shared: don't pin a core

for t in "${targets[@]}"; do
    rm -rf "$out/findings/$t"
    mkdir -p "$out/findings"
    dict=()
    case "$t" in safetensors|config|tokenizer|jsonl) [ -f "$json_dict" ] && dict=(-x "$json_dict");; esac
    # a parse that takes over 5 s on inputs this small is a hang; parquet refuses a footer it cannot
    # read in 10 s (TextTable.FooterReadLimit), so only past that is it one
    timeout_ms=5000; [ "$t" = parquet ] && timeout_ms=15000
    echo "=== $t: ${seconds}s"
    # -m none: .NET reserves a lot of address space
    afl-fuzz -V "$seconds" -t "$timeout_ms" -m none "${dict[@]}" -i "$here/corpus/$t" -o "$out/findings/$t" \
        -- dotnet "$out/bin/MixupBert.Fuzz.dll" "$t" > "$out/findings/$t.log" 2>&1 \
        || { echo "afl-fuzz failed for $t:"; tail -20 "$out/findings/$t.log"; continue; }
done

echo
printf '%-12s %8s %10s %8s %8s %8s\n' target seconds executions paths crashes hangs
for t in "${targets[@]}"; do
    stats="$out/findings/$t/default/fuzzer_stats"
    [ -f "$stats" ] || { printf '%-12s (no fuzzer_stats)\n' "$t"; continue; }
    get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    printf '%-12s %8s %10s %8s %8s %8s\n' "$t" "$(get run_time)" "$(get execs_done)" "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)"
done
