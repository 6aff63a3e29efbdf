#!/usr/bin/env bash
# Runs every test of Gatehouse: unit and property tests, the hosted-mode
# namespace tests and the QEMU suite. Needs root for namespaces and taps.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo test --release --workspace
