#!/usr/bin/env bash
# Markers of finished work (sourced, not run). A stage's `.done` file holds a
# fingerprint of what the work was made from: the words given (options, names)
# and the content of those words that are files (small files by their bytes, large
# ones, such as model checkpoints, by size and modification time). A re-run with
# the same inputs skips the work; any change makes `is_done` false, so the stage
# does the work again instead of trusting an output of other options.
#
#   fp=$(fingerprint "--fs ${fs}" data/train/wav.scp conf/x.yaml)
#   is_done dump/train/.done "${fp}" || { work; mark_done dump/train/.done "${fp}"; }

fingerprint() {  # fingerprint WORD...: one hash of the words and their files
    local word
    for word in "$@"; do
        printf '%s\n' "${word}"
        if [ -f "${word}" ]; then
            if [ "$(stat -c %s "${word}")" -gt 10000000 ]; then
                stat -c '%s %Y' "${word}"
            else
                sha1sum < "${word}"
            fi
        fi
    done | sha1sum | cut -d' ' -f1
}

is_done() {  # is_done MARKER FINGERPRINT: the marker exists and holds it
    [ -f "$1" ] && [ "$(head -n 1 "$1")" = "$2" ]
}

done_reason() {  # done_reason MARKER: why is_done is false, in words
    if [ -f "$1" ]; then
        echo "$1 was made from other options or inputs"
    else
        echo "$1 is missing"
    fi
}

mark_done() {  # mark_done MARKER FINGERPRINT
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" > "$1.tmp" && mv "$1.tmp" "$1"
}
