# bash completion for llmux(1): the commands, each command's options, and
# provider names for -m/--model and --fallback.
#
# The option lists mirror the option table of tools/cli/tool_cmds.c;
# tests/cli/test_cli.sh checks them against each command's --help. Works
# with bash-completion's helpers when they are loaded, and without.

# The provider names `llmux providers` lists (its first column, the header
# skipped); nothing when the program cannot run.
_llmux_providers()
{
    local bin
    bin=$(type -P -- "$1" 2>/dev/null) || bin=$(type -P llmux 2>/dev/null) ||
        return 0
    "$bin" providers 2>/dev/null </dev/null | awk 'NR > 1 { print $1 }'
}

_llmux()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        # -s: "--model=o" completes as "--model" "o"
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=
        ((cword > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi

    local commands="chat complete embed models tokenize detokenize evaluate
        batch providers serve help version"
    local conn="-m --model --base-url --api-key --key-cmd --token-cmd --timeout
        --retries --header"
    local gen="--max-tokens --temperature --top-p --stop --seed --n --logprobs
        --top-logprobs"
    local resil="--connect-timeout --first-byte-timeout --idle-timeout
        --fallback --field"
    local help="-h --help"

    if ((cword <= 1)); then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-h --help -V --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return 0
    fi

    local cmd=${words[1]} opts
    case $cmd in
    chat)
        opts="$conn -s --system $gen $resil -v --verbose --stream --json
            --request-file --image $help"
        ;;
    complete)
        opts="$conn $gen $resil -v --verbose --stream --json $help"
        ;;
    embed)
        opts="$conn $resil -v --verbose --json $help"
        ;;
    models | tokenize | detokenize)
        opts="$conn --json $help"
        ;;
    evaluate)
        opts="$conn --json --expected $help"
        ;;
    batch)
        opts="$conn -s --system $gen $resil -j --concurrency --rpm --tpm
            --as-completed --ordered --fail-fast --jsonl -o --output --resume
            --shard -q --quiet --provider --errors --json $help"
        ((cword == 2)) && opts="$opts submit status fetch cancel"
        ;;
    providers)
        opts="-v --verbose --json $help"
        ;;
    serve)
        opts="--config --listen --port-file $help"
        ;;
    help)
        ((cword == 2)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
        ;;
    *)
        return 0
        ;;
    esac

    # "--model=o" without bash-completion's helpers: readline broke it
    # into "--model" "=" "o"
    if [[ $prev == = ]] && ((cword >= 3)); then
        prev=${words[cword - 2]}
    fi

    case $prev in
    -m | --model | --fallback)
        # a provider; a model after its '/' is the provider's to know
        [[ $cur == */* ]] && return 0
        local names
        names=$(_llmux_providers "${words[0]}")
        if [[ $cmd == models ]]; then
            COMPREPLY=($(compgen -W "$names" -- "$cur"))
        else
            COMPREPLY=($(compgen -S / -W "$names" -- "$cur"))
            compopt -o nospace 2>/dev/null
        fi
        return 0
        ;;
    --request-file | --image | --config | --port-file | -o | --output)
        # one name per line: names with spaces or '*' stay whole
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        compopt -o filenames 2>/dev/null
        return 0
        ;;
    --base-url | --api-key | -s | --system | --max-tokens | --temperature | \
        --top-p | --stop | --seed | --n | --top-logprobs | --timeout | \
        --retries | \
        --connect-timeout | --first-byte-timeout | --idle-timeout | \
        --expected | -j | --concurrency | --rpm | --tpm | --shard | --listen | \
        --provider)
        return 0 # a value of the user's own
        ;;
    esac

    # after "--" every word is an argument
    local i
    for ((i = 2; i < cword; i++)); do
        [[ ${words[i]} == -- ]] && break
    done
    if [[ $cur == -* ]] && ((i == cword)); then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $cmd == batch ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur") # the input FILE
        compopt -o filenames 2>/dev/null
    fi
    return 0
}

complete -F _llmux llmux
