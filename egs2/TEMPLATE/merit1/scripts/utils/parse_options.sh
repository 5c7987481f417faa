#!/usr/bin/env bash
# Option parser for recipe scripts (sourced, not run): every `--name value` or
# `--name=value` on the command line sets the shell variable `name`, which the
# calling script must already define (its default); dashes in names become
# underscores. `--help` / `-h` prints the caller's ${help_message} and exits 0.
# Parsing stops at the first word that is not an option; the remaining words stay
# in "$@". A boolean variable (default true or false) only accepts true or false.
#
#   nj=4; help_message="Usage: $0 [--nj N] <dir>"
#   . scripts/utils/parse_options.sh || exit 1

while [ $# -gt 0 ]; do
    case "$1" in
        --help | -h)
            echo "${help_message:-no help message}"
            exit 0
            ;;
        --*=*)
            __name=${1%%=*}
            __value=${1#*=}
            shift
            ;;
        --*)
            __name=$1
            if [ $# -lt 2 ]; then
                echo "$0: option ${__name} needs a value" >&2
                exit 2
            fi
            __value=$2
            shift 2
            ;;
        *)
            break
            ;;
    esac
    __name=${__name#--}
    __name=${__name//-/_}
    if [[ ! ${__name} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "$0: invalid option name --${__name}" >&2
        exit 2
    fi
    if [ -z "${!__name+set}" ]; then
        echo "$0: unknown option --${__name} (see $0 --help)" >&2
        exit 2
    fi
    __old=${!__name}
    if { [ "${__old}" = true ] || [ "${__old}" = false ]; } \
        && [ "${__value}" != true ] && [ "${__value}" != false ]; then
        echo "$0: --${__name} takes true or false, got '${__value}'" >&2
        exit 2
    fi
    printf -v "${__name}" '%s' "${__value}"
done
unset __name __value __old
true
