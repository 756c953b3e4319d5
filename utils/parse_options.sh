#!/usr/bin/env bash
# Source this after declaring a script's options as shell variables (with their defaults):
#   stage=1        # first stage to run
#   nj=4           # number of parallel jobs
#   . utils/parse_options.sh
# Every declared variable `foo_bar` becomes an option `--foo_bar VALUE` (also `--foo-bar`).
# Rules (Kaldi's): an option that was not declared is an error; a variable whose default is `true` or
# `false` only takes `true` or `false`; `--config FILE` sources FILE first, so options given later on the
# command line win over it; `--help` / `-h` prints $help_message (if set) and the declared options
# with their defaults and trailing comments, then exits 0. Parsing stops at the first non-option argument
# or at `--`. Errors go to stderr with exit 2 (usage).
#
# Sourced, not run: it works on the caller's variables and positional parameters.

__po_script=${0##*/}

__po_print_help() {
    [ -n "${help_message:-}" ] && printf '%s\n\n' "$help_message"
    local src=$0
    if [ -f "$src" ]; then
        echo "Options (default in brackets):"
        # Declared options: `name=value  # comment` lines before the sourcing of this file.
        awk '/parse_options\.sh/ {exit}
             /^[A-Za-z_][A-Za-z0-9_]*=/ {
                 line=$0; name=line; sub(/=.*/, "", name)
                 if (name == "help_message") next
                 comment=""; if (match(line, /#.*/)) { comment=substr(line, RSTART+1); sub(/^ +/, "", comment) }
                 val=line; sub(/^[^=]*=/, "", val); sub(/[ \t]+#.*$/, "", val)
                 printf "  --%-24s %s [%s]\n", name, comment, val
             }' "$src"
    fi
}

while true; do
    [ $# -eq 0 ] && break
    case "$1" in
        --help|-h)
            __po_print_help
            exit 0 ;;
        --)
            shift; break ;;
        --*=*)
            echo "$__po_script: options take a separate value: use '${1%%=*} ${1#*=}', not '$1'" >&2
            exit 2 ;;
        --*)
            __po_name=$(echo "${1#--}" | sed 's/-/_/g')
            if [ -z "${__po_name}" ] || ! [[ "${__po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
                echo "$__po_script: invalid option name '$1'" >&2
                exit 2
            fi
            # declared? (set, possibly to an empty string); --config is always accepted, as in Kaldi
            if [ "${__po_name}" != config ] && ! eval "[ -n \"\${${__po_name}+x}\" ]"; then
                echo "$__po_script: unknown option '$1' (run with --help for the list)" >&2
                exit 2
            fi
            if [ $# -lt 2 ]; then
                echo "$__po_script: option '$1' needs a value" >&2
                exit 2
            fi
            __po_old=$(eval "echo \"\${${__po_name}:-}\"")
            if [ "${__po_name}" = config ]; then
                if [ ! -f "$2" ]; then
                    echo "$__po_script: --config: no such file '$2'" >&2
                    exit 2
                fi
                # shellcheck disable=SC1090
                . "$2"
                config=$2
            else
                if { [ "$__po_old" = true ] || [ "$__po_old" = false ]; } && [ "$2" != true ] && [ "$2" != false ]; then
                    echo "$__po_script: option '$1' is boolean: give 'true' or 'false', not '$2'" >&2
                    exit 2
                fi
                printf -v "${__po_name}" '%s' "$2"
            fi
            shift 2 ;;
        *)
            break ;;
    esac
done
unset __po_name __po_old
true  # never leave a non-zero status behind for `set -e` callers
