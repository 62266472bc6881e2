#!/bin/sh
# Checks that man/memsup.1 and `memsup --help` / `memsup report --help` name
# the same options, and that the page renders without groff warnings.
# Usage: man/check-help.sh MEMSUP_BIN
set -eu
bin=${1:?usage: $0 MEMSUP_BIN}
dir=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Options that --help defines: its lines that start with spaces and a dash
# ("  -q, --quiet   errors only", "  --json  print ...").
help_opts() {
  grep -E '^ +-' | sed -E 's/^ +//; s/  .*//; s/ [A-Z|%a-z-]*[A-Z|%][A-Za-z|%]*//g' |
    grep -oE -- '--?[a-z][a-z0-9-]*' | sort -u
}
# Options that the page defines: the tag line after each .TP.
man_opts() {
  awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' |
    sed -E 's/\\f[BIR]//g; s/\\-/-/g; s/"[^"]*"//g' |
    grep -oE -- '--?[a-z][a-z0-9-]*' | sort -u
}

"$bin" --help > "$tmp/help"
"$bin" report --help >> "$tmp/help"
help_opts < "$tmp/help" > "$tmp/help.opts"
man_opts < "$dir/memsup.1" > "$tmp/man.opts"

warn=$(groff -ww -z -man "$dir/memsup.1" 2>&1 || true)
if [ -n "$warn" ]; then echo "man/memsup.1: groff warnings:"; echo "$warn"; exit 1; fi
LC_ALL=C MANWIDTH=80 man -l "$dir/memsup.1" > /dev/null

rc=0
[ -n "${V:-}" ] && paste "$tmp/help.opts" "$tmp/man.opts"
missing=$(comm -23 "$tmp/help.opts" "$tmp/man.opts")
extra=$(comm -13 "$tmp/help.opts" "$tmp/man.opts")
if [ -n "$missing" ]; then echo "in --help, not in man/memsup.1:" $missing; rc=1; fi
if [ -n "$extra" ]; then echo "in man/memsup.1, not in --help:" $extra; rc=1; fi
[ $rc = 0 ] && echo "man/memsup.1 and --help agree ($(wc -l < "$tmp/help.opts") options)"
exit $rc
