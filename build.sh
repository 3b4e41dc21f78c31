#!/usr/bin/env bash
# Cake's usual bootstrapper: restore the local tools (cake.tool), then run the build script.
#   ./build.sh --target=FineTune     the main job on the embedded default
#   ./build.sh --target=Test         the test suite
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet tool restore >/dev/null
exec dotnet cake build.cake "$@"
