#!/usr/bin/env bash
# Install Apptainer on an Ubuntu runner from the project's PPA (Debian bookworm does not package it).
set -euo pipefail
if command -v apptainer > /dev/null; then apptainer --version; exit 0; fi
sudo add-apt-repository -y ppa:apptainer/ppa
sudo apt-get update -q
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q apptainer
apptainer --version
