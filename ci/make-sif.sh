#!/usr/bin/env bash
# `make sif`: turn each local Docker image into a SIF file without Apptainer, the way `apptainer build
# X.sif docker-daemon://IMAGE` lays it out: the image's flattened root filesystem with /.singularity.d
# (runscript, env/, labels.json, the definition file, actions/) as a squashfs system partition, the
# definition file as a Def.File object and the labels as a JSON object, assembled with siftool. Then
# checks each file: siftool list/info, the partition extracted back with siftool dump + unsquashfs, and
# its runscript run (`CLI --help`) in a chroot of that root as uid 1000, with a private /proc.
# This is NOT a real `apptainer run` (Apptainer is not packaged for this machine); the release workflow
# builds its SIF files with the real `apptainer build` (ci/build-images.sh --apptainer).
#
#   ci/make-sif.sh [CLI...]      default: all six; writes dist/containers/<cli>_<version>.sif
# Environment: DOCKER [docker], PYTHON [python3]. Installs squashfs-tools and siftool with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-python3}
missing=()
command -v mksquashfs > /dev/null || missing+=(squashfs-tools)
command -v siftool > /dev/null || missing+=(siftool)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
fi
declare -A VERSION=()
while read -r cli version _kind; do VERSION[$cli]=$version; done < <("$PYTHON" ci/render_containers.py --list)
clis=("$@")
[ ${#clis[@]} -gt 0 ] || clis=("${!VERSION[@]}")
mkdir -p dist/containers
work=$(mktemp -d "${TMPDIR:-/tmp}/stride-sif.XXXXXX")
trap 'rm -rf "$work"' EXIT

printf '%-20s %10s %8s %s\n' cli sif_size build_s check
for cli in "${clis[@]}"; do
  t=$SECONDS
  version=${VERSION[$cli]:?unknown CLI $cli}
  image=$cli:$version
  sif=dist/containers/${cli}_$version.sif
  root=$work/$cli/root
  mkdir -p "$root"
  container=$("$DOCKER" create "$image")
  "$DOCKER" export "$container" | tar -x -C "$root" --exclude='dev/*'
  "$DOCKER" rm "$container" > /dev/null
  meta=$root/.singularity.d
  mkdir -p "$meta/env" "$meta/actions" "$meta/libs"
  printf '#!/bin/sh\nexec %s "$@"\n' "$cli" > "$meta/runscript"
  printf '#!/bin/sh\nexec %s --help > /dev/null\n' "$cli" > "$meta/test"
  # The image's ENV, as Apptainer's docker conversion writes it.
  "$DOCKER" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" |
    awk -F= 'NF > 1 { name = $1; sub(/^[^=]*=/, "")
      if (name == "PATH") printf "export PATH=\"%s\"\n", $0  # the image PATH, as Apptainer sets it
      else printf "export %s=\"${%s:-%s}\"\n", name, name, $0 }' \
      > "$meta/env/10-docker2singularity.sh"
  sed -n '/^%environment/,/^%/p' "containers/$cli/$cli.def" | sed '1d;$d' | sed 's/^    //' > "$meta/env/90-environment.sh"
  cp "containers/$cli/$cli.def" "$meta/Singularity"
  "$DOCKER" image inspect --format '{{json .Config.Labels}}' "$image" > "$meta/labels.json"
  cat > "$meta/actions/run" << 'SH'
#!/bin/sh
for script in /.singularity.d/env/*.sh; do . "$script"; done
exec /.singularity.d/runscript "$@"
SH
  cat > "$meta/actions/exec" << 'SH'
#!/bin/sh
for script in /.singularity.d/env/*.sh; do . "$script"; done
exec "$@"
SH
  cat > "$meta/actions/test" << 'SH'
#!/bin/sh
for script in /.singularity.d/env/*.sh; do . "$script"; done
exec /.singularity.d/test "$@"
SH
  cat > "$meta/actions/shell" << 'SH'
#!/bin/sh
for script in /.singularity.d/env/*.sh; do . "$script"; done
exec /bin/bash "$@"
SH
  chmod 0755 "$meta/runscript" "$meta/test" "$meta/actions/"* "$meta/env/"*.sh
  ln -sfn .singularity.d/runscript "$root/singularity"
  mksquashfs "$root" "$work/$cli/root.squashfs" -noappend -all-root -comp gzip -quiet > /dev/null
  "$PYTHON" -c 'import json, sys; labels = json.load(open(sys.argv[1])); json.dump({"data": {"attributes": {"labels": labels}, "type": "container"}}, open(sys.argv[2], "w"))' \
    "$meta/labels.json" "$work/$cli/inspect.json"
  rm -f "$sif"
  siftool new "$sif"
  siftool add --datatype 1 --groupid 1 --filename "$cli.def" "$sif" "containers/$cli/$cli.def"
  siftool add --datatype 6 --groupid 1 --filename inspect.json "$sif" "$work/$cli/inspect.json"
  siftool add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 --filename root.squashfs \
    "$sif" "$work/$cli/root.squashfs"
  build_s=$((SECONDS - t))
  rm -rf "$root"

  # Check: the objects, the partition extracted back, and the runscript in a chroot of it.
  listing=$(siftool list "$sif")
  for kind in Def.File JSON.Generic 'FS.*Squashfs.*\*System.*amd64'; do
    grep -q -i -E "$kind" <<< "$listing" || { echo "make-sif: $sif has no $kind object:" >&2; echo "$listing" >&2; exit 1; }
  done
  partition=$(awk -F'|' '/Squashfs/ { gsub(/ /, "", $1); print $1; exit }' <<< "$listing")
  siftool info "$partition" "$sif" > /dev/null
  siftool dump "$partition" "$sif" > "$work/$cli/dumped.squashfs"
  cmp -s "$work/$cli/dumped.squashfs" "$work/$cli/root.squashfs" || { echo "make-sif: partition of $sif differs" >&2; exit 1; }
  unsquashfs -quiet -no-progress -d "$work/$cli/extracted" "$work/$cli/dumped.squashfs" > /dev/null
  # The device nodes Apptainer binds from the host; torch reads /dev/urandom as it loads.
  mkdir -p "$work/$cli/extracted/dev"
  for node in null:3 zero:5 random:8 urandom:9; do
    mknod -m 666 "$work/$cli/extracted/dev/${node%:*}" c 1 "${node#*:}"
  done
  # A private /proc, as Apptainer mounts one (psutil, imported by dask, reads it).
  mkdir -p "$work/$cli/extracted/proc"
  help=$(env -i HOME=/tmp PATH=/usr/bin:/bin unshare --mount --pid --fork --mount-proc="$work/$cli/extracted/proc" \
    /usr/sbin/chroot --userspec=1000:1000 "$work/$cli/extracted" /.singularity.d/actions/run --help)
  grep -q "^Usage: $cli" <<< "$help" || { echo "make-sif: the runscript of $sif did not print $cli's usage" >&2; exit 1; }
  # One command past --help: the CLI reports the version its image label and pyproject state.
  reported=$(env -i HOME=/tmp PATH=/usr/bin:/bin unshare --mount --pid --fork --mount-proc="$work/$cli/extracted/proc" \
    /usr/sbin/chroot --userspec=1000:1000 "$work/$cli/extracted" /.singularity.d/actions/run --version)
  [ "$reported" = "$cli $version" ] || { echo "make-sif: $sif --version says '$reported', not '$cli $version'" >&2; exit 1; }
  rm -rf "${work:?}/$cli"
  printf '%-20s %10s %8s %s\n' "$cli" "$(du -h "$sif" | cut -f1)" "$build_s" "siftool list/info/dump ok; runscript --help, --version in chroot ok"
done
echo "Note: checked without Apptainer (not packaged here); the release builds its SIF files with apptainer build."
