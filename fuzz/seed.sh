#!/usr/bin/env bash
# Seeds each fuzz target's corpus (fuzz/corpus/<target>/) with the fixtures and hand-written
# seeds fuzz/seeds.txt names, each behind its target's parameter prefix. Running it again only
# rewrites the seed files; what the fuzzer added to a corpus stays.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob

# Writes the bytes of a hex string.
unhex() {
    local hex=$1 i
    for ((i = 0; i < ${#hex}; i += 2)); do
        printf "\\x${hex:i:2}"
    done
}

# The DER of each PEM section of a file, one file per section: <out>-<n>.
pem_to_der() {
    local file=$1 out=$2 n=0 line body=""
    while IFS= read -r line || [[ -n $line ]]; do
        case $line in
            -----BEGIN*) body="" ;;
            -----END*)
                n=$((n + 1))
                printf '%s' "$body" | base64 -d > "$out-$n"
                ;;
            *) body+=$line ;;
        esac
    done < "$file"
}

while read -r target prefix files; do
    [[ -z $target || $target == \#* ]] && continue
    dir=fuzz/corpus/$target
    mkdir -p "$dir"
    [[ $prefix == - ]] && prefix=""
    for pattern in $files; do
        der=false
        if [[ $pattern == der:* ]]; then
            der=true
            pattern=${pattern#der:}
        fi
        matched=false
        for file in $pattern; do
            [[ -f $file ]] || continue
            matched=true
            name=seed-$(printf '%s' "$prefix-$file" | tr -c 'A-Za-z0-9._-' '_')
            if $der; then
                tmp=$(mktemp -d)
                pem_to_der "$file" "$tmp/section"
                for section in "$tmp"/section-*; do
                    { unhex "$prefix"; cat "$section"; } > "$dir/$name-${section##*-}"
                done
                rm -rf "$tmp"
            else
                { unhex "$prefix"; cat "$file"; } > "$dir/$name"
            fi
        done
        if ! $matched; then
            echo "fuzz/seed.sh: nothing matches $pattern (fuzz/seeds.txt, $target)" >&2
            exit 1
        fi
    done
done < fuzz/seeds.txt

for dir in fuzz/corpus/*/; do
    printf '%-20s %4d files\n' "$(basename "$dir")" "$(find "$dir" -type f | wc -l)"
done
