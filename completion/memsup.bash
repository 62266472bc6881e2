# bash completion for memsup(1): memsup, memsup watch, memsup report.
# Installed by `make install` to $(PREFIX)/share/bash-completion/completions/memsup.

_memsup() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi

  local i sub=""
  for ((i = 1; i < cword; i++)); do
    # After "--" the rest is the worker's command line.
    if [[ ${words[i]} == -- ]]; then
      if declare -F _command_offset >/dev/null 2>&1; then
        _command_offset $((i + 1))
      else
        COMPREPLY=($(compgen -c -- "$cur"))
      fi
      return
    fi
    if [[ $i == 1 && ( ${words[i]} == report || ${words[i]} == watch ) ]]; then
      sub=${words[i]}
    fi
  done

  if [[ $sub == report ]]; then
    case $prev in
      --svg) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W '--json --svg --compare --help' -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return
  fi

  case $prev in
    --metric) COMPREPLY=($(compgen -W 'footprint rss heap' -- "$cur")); return ;;
    --restart) COMPREPLY=($(compgen -W 'on-failure always' -- "$cur")); return ;;
    --log|--sample-log) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --state-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --pid) COMPREPLY=($(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$cur")); return ;;
    --limit|--soft-limit|--interval|--for|--grace|--handshake-timeout|\
    --max-restarts|--within|--sample-every|--sample-log-max|--log-max|--max-state|\
    --metrics|--listen|--workers)
      return ;;
  esac

  local opts='--limit --soft-limit --metric --interval --for --grace
    --handshake-timeout --max-restarts --within --restart --tree --subreaper
    --dry-run --log --log-max --sample-log --sample-every --sample-log-max --state-dir
    --max-state --metrics --listen --workers --quiet --verbose --help --version'
  if [[ $sub == watch ]]; then
    opts="--pid $opts"
  elif [[ $cword == 1 && $cur != -* ]]; then
    COMPREPLY=($(compgen -W 'report watch --' -- "$cur"))
    return
  fi
  if [[ $sub != watch ]]; then opts="$opts --pid --"; fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _memsup memsup
