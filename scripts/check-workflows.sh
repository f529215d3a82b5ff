#!/usr/bin/env bash
# Checks the GitHub Actions workflows and the CI example users copy: each must match GitHub's
# workflow schema, and zizmor must find nothing of medium severity or above (unpinned actions,
# persisted checkout credentials, template injection, broad permissions, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned, as a new release of either may add rules and fail an unchanged workflow.
check_jsonschema_version=0.39.0
zizmor_version=1.32.0

# The project's own virtualenv, as scripts/setup.sh makes it (the system Python may be
# externally managed); zizmor's wheel carries its binary, so nothing is compiled.
venv="$(pwd)/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$("$venv/bin/check-jsonschema" --version 2>/dev/null)" != "check-jsonschema, version $check_jsonschema_version" ] \
  || [ "$("$venv/bin/zizmor" --version 2>/dev/null)" != "zizmor $zizmor_version" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "check-jsonschema==$check_jsonschema_version" "zizmor==$zizmor_version"
fi

shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml examples/github-actions.yml)

"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${files[@]}"
# --offline: no GitHub token and no network, so the result depends on the files alone.
"$venv/bin/zizmor" --offline --min-severity medium --no-progress --color never "${files[@]}"
