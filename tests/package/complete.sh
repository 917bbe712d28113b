# usage: bash complete.sh WORD... — what bash completion offers for the last
# word of the command line WORD... (the eventflow completion, as installed).
source /usr/share/bash-completion/bash_completion
source /usr/share/bash-completion/completions/eventflow
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_eventflow
echo "${COMPREPLY[*]}"
