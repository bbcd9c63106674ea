#!/usr/bin/env bash
# The system packages some tests need, and what `make test` does about them (docs/testing.md#system-packages).
#
#   system-packages.sh check NEED      exit 0 if NEED is there, else print why not (one line) and exit 1
#   system-packages.sh provision       `make test`: install what is missing when it can (root or `sudo -n`);
#                                      otherwise say which tests will be skipped and go on; under CI, fail
#   system-packages.sh install         `make system-deps`: install what is missing, or fail saying why
#   system-packages.sh summary FILE    count the skips the tests recorded in FILE, one line per reason
#
# NEED is one of the names below. The tests ask `check` before they use one (tests/suite/common/system.rs),
# so this file is the one list of what is needed, how it is recognised and which Debian packages bring it.
set -euo pipefail

NEEDS=(slurm tmux latex font fashion-mnist)
# Why the Slurm tests skip where every package is installed; no package fixes it.
NOT_ROOT="the test Slurm cluster runs as root"

# The Debian packages of a need.
packages() {
    case "$1" in
        slurm) echo slurmctld slurmd slurm-client munge ;;
        tmux) echo tmux ;;
        latex) echo texlive-latex-base texlive-latex-recommended ;;
        font) echo fonts-dejavu-core ;;
        fashion-mnist) echo dataset-fashion-mnist ;;
        *) echo "system-packages.sh: unknown need '$1' (one of ${NEEDS[*]})" >&2; exit 2 ;;
    esac
}

# Daemons live in /usr/sbin, which a user's PATH may lack.
have() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }

# Why a need is not met, as one phrase; nothing when it is.
missing() {
    case "$1" in
        slurm)
            for tool in slurmctld slurmd sbatch munged; do
                have "$tool" || { echo "$tool not installed"; return; }
            done
            # tests/slurm/cluster.sh runs the daemons as root, as Slurm's own packages do.
            [ "$(id -u)" = 0 ] || echo "$NOT_ROOT"
            ;;
        tmux) have tmux || echo "tmux not installed" ;;
        latex)
            if ! have pdflatex; then
                echo "pdflatex not installed"
            elif ! kpsewhich booktabs.sty >/dev/null 2>&1; then
                echo "LaTeX's booktabs not installed"
            fi
            ;;
        font) [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || echo "the DejaVu Sans font not installed" ;;
        fashion-mnist)
            [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
                echo "Debian's Fashion-MNIST not installed"
            ;;
        *) packages "$1" ;;
    esac
}

# The Debian packages of every need that is not met (a need unmet only for want of root has none).
missing_packages() {
    local need
    for need in "${NEEDS[@]}"; do
        case "$(missing "$need")" in
            "" | "$NOT_ROOT") ;;
            *) packages "$need" ;;
        esac
    done | tr '\n' ' ' | sed 's/ *$//'
}

in_ci() { case "${CI:-}" in "" | 0 | false) return 1 ;; *) return 0 ;; esac; }

# Prints the command prefix that installs as root (nothing for root), or fails.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        echo ""
    elif have sudo && sudo -n true 2>/dev/null; then
        echo "sudo -n"
    else
        return 1
    fi
}

install_packages() {
    local sudo
    sudo=$(as_root) || return 1
    have apt-get || return 1
    echo "installing the tests' system packages from Debian: $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

provision() {
    local wanted
    wanted=$(missing_packages)
    [ -n "$wanted" ] || return 0
    # shellcheck disable=SC2086
    if install_packages $wanted; then
        return 0
    fi
    if in_ci; then
        echo "system-packages.sh: CI runs every test, and these are missing and cannot be installed here" \
            "(neither root nor sudo -n, or no apt-get): $wanted" >&2
        exit 1
    fi
    echo "note: not installed, so the tests that need them will be skipped: $wanted" \
        "(sudo make system-deps installs them)"
}

install() {
    local wanted
    wanted=$(missing_packages)
    if [ -z "$wanted" ]; then
        echo "the tests' system packages are installed"
        return 0
    fi
    # shellcheck disable=SC2086
    install_packages $wanted || {
        echo "system-packages.sh: installing needs root (or sudo -n) and apt-get: $wanted" >&2
        exit 1
    }
}

# FILE holds one line per skipped test: `test<TAB>reason`.
summary() {
    [ -s "$1" ] || return 0
    cut -f 2 "$1" | sort | uniq -c | while read -r count reason; do
        case "$reason" in
            "$NOT_ROOT") hint="run make test as root" ;;
            *) hint="run sudo make system-deps" ;;
        esac
        echo "$count skipped: $reason — $hint"
    done
}

case "${1:-}" in
    check)
        why=$(missing "${2:?usage: system-packages.sh check NEED}")
        [ -z "$why" ] || { echo "$why"; exit 1; }
        ;;
    provision) provision ;;
    install) install ;;
    summary) summary "${2:?usage: system-packages.sh summary FILE}" ;;
    *) sed -n '4,8p' "$0" >&2; exit 2 ;;
esac
