# bash completion for eventflow(1): commands, subcommands and each one's flags.
_eventflow() {
    local cur prev words cword
    _init_completion || return

    local cmd="" sub="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
        esac
    done

    case $prev in
        --config)
            _filedir '@(yaml|yml)'
            return ;;
        --dir)
            _filedir -d
            return ;;
        --cacert|--cert|--key)
            _filedir '@(pem|crt|key)'
            return ;;
        --role)
            COMPREPLY=($(compgen -W 'all api worker' -- "$cur"))
            return ;;
        --kind)
            COMPREPLY=($(compgen -W 'validator enricher sink' -- "$cur"))
            return ;;
        --scope)
            COMPREPLY=($(compgen -W 'ingest admin metrics' -- "$cur"))
            return ;;
        --report)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        --error-type)
            COMPREPLY=($(compgen -W 'validation rejected transient poison plugin_exception no_pipeline' -- "$cur"))
            return ;;
        --name | --pipeline | --since | --until | --limit | --offset | --api-key | --url | --count | \
            --duration | --concurrency | --batch | --invalid-every | --wait-timeout)
            return ;;
    esac

    local opts=""
    case $cmd in
        "")
            COMPREPLY=($(compgen -W 'serve validate test dlq plugins plugin keys produce reload version help' -- "$cur"))
            return ;;
        serve) opts='--config --role --help' ;;
        validate) opts='--config --help' ;;
        test)
            if [[ $cur != -* ]]; then
                _filedir '@(yaml|yml)'
                return
            fi
            opts='--config --help' ;;
        dlq)
            case $sub in
                "") COMPREPLY=($(compgen -W 'list show replay purge' -- "$cur")); return ;;
                list) opts='--pipeline --error-type --since --until --limit --offset --json --config' ;;
                show) opts='--json --config' ;;
                replay) opts='--all --pipeline --error-type --since --until --limit --dry-run --api-key --config' ;;
                purge) opts='--all --pipeline --error-type --since --until --dry-run --config' ;;
            esac ;;
        plugins)
            case $sub in
                "") COMPREPLY=($(compgen -W 'list show' -- "$cur")); return ;;
                list) opts='--config --json' ;;
                show) opts='--config' ;;
            esac ;;
        plugin)
            case $sub in
                "") COMPREPLY=($(compgen -W 'new' -- "$cur")); return ;;
                new) opts='--kind --dir --help' ;;
            esac ;;
        keys)
            case $sub in
                "") COMPREPLY=($(compgen -W 'new' -- "$cur")); return ;;
                new) opts='--scope --name --help' ;;
            esac ;;
        reload) opts='--config --url --api-key --json --help' ;;
        produce)
            opts='--url --cacert --insecure --cert --key --count --duration --concurrency --batch --api-key --invalid-every --close --random-ids --wait
                  --wait-timeout --mix --report --help' ;;
    esac
    [[ $cur == -* || -z $cur ]] && COMPREPLY=($(compgen -W "$opts" -- "$cur"))
} &&
    complete -F _eventflow eventflow
