#!/usr/bin/env bash
# Writes go.work from the go.mod files present, or with --check fails when the
# committed go.work differs from what it would write. tools/devtools is left out
# on purpose: the pinned developer tools must not constrain the services' versions.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(
  echo "go $(sed -n 's/^go //p' gen/go.mod)"
  echo
  echo "use ("
  git ls-files --cached --others --exclude-standard '*go.mod' | grep -v '^tools/devtools/' |
    xargs -n1 dirname | sort | sed 's|^|\t./|'
  echo ")"
)
if [ "${1:-}" = "--check" ]; then
  if ! diff -u go.work <(echo "$want"); then
    echo "go.work is out of date with the go.mod files: run 'make gowork'" >&2
    exit 1
  fi
  exit 0
fi
echo "$want" > go.work
