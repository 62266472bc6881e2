#!/bin/bash
# Checks completion/memsup.bash: what it offers in a few positions, and that
# it offers every option `memsup --help` defines.  Usage: completion/check.sh MEMSUP_BIN
set -u
bin=${1:?usage: $0 MEMSUP_BIN}
. "$(dirname "$0")/memsup.bash"
fail=0
# complete WORDS... : runs _memsup with the cursor on the last word.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _memsup memsup "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {
  local want=$1; shift
  local got; got=$(complete_words "$@")
  if [[ $got != "$want" ]]; then
    echo "completion of '$*': got '$got', want '$want'"; fail=1
  fi
}
expect 'footprint heap rss ' memsup --metric ''
expect 'always on-failure ' memsup --restart ''
expect 'report ' memsup rep
expect '--json ' memsup report --js
expect '--sample-every --sample-log --sample-log-max --soft-limit --state-dir --subreaper ' memsup --s
expect '--sample-every --sample-log --sample-log-max ' memsup --sa
expect '--pid ' memsup watch --pi
expect '' memsup --limit ''
# After "--": commands, not memsup's options.
got=$(complete_words memsup --limit 1G -- --li)
[[ $got == *--limit* ]] && { echo "options offered after --: $got"; fail=1; }
# Every option of --help is offered.
all=$(complete_words memsup --)
for o in $("$bin" --help | grep -E '^ +-' | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
  [[ " $all " == *" $o "* ]] || { echo "--help option $o not completed"; fail=1; }
done
[[ $fail == 0 ]] && echo "completion/memsup.bash: ok"
exit $fail
