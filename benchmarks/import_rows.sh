#!/usr/bin/env bash
# Bring a GPU campaign's rows home as committed reference rows. From ARCHIVE (the results.tgz a
# campaign script leaves in its OUT: results/raw, results/traces, logs) copy what lies below each
# SUBPATH (an experiment and GPU label, memory/h200, or one model's folder, llm/h200/NAME) into
# resources/reference/FOLDER/{raw,traces,logs}/SUBPATH, with campaign.log beside the archive as
# FOLDER/logs/campaign.log. The GPU host's own paths in the logs are written as placeholders
# (<repository>, <site>, <python>): committed files name no machine's paths. Nothing already there
# is overwritten, and a SUBPATH the archive lacks stops the import before anything is copied.
#
# usage: benchmarks/import_rows.sh ARCHIVE FOLDER SUBPATH [SUBPATH ...]   (from the repository root)
# then write FOLDER/README.md: the card's UUID, software, configuration, command, what the rows show.
set -euo pipefail
[ $# -ge 3 ] || {
  sed -n 's/^# usage: //p' "$0" >&2
  exit 2
}
archive=$1 dest=resources/reference/$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$archive" -C "$tmp"
sources=() # the archive's folders below each SUBPATH
for sub in "$@"; do
  found=0
  for src in "results/raw/$sub" "results/traces/$sub" "logs/$sub"; do
    [ -e "$tmp/$src" ] && {
      sources+=("$src")
      found=1
    }
  done
  [ $found -eq 1 ] || {
    echo "$archive holds nothing below $sub" >&2
    exit 1
  }
done
planned=() # SOURCE:TARGET, every target checked before anything is copied: all or nothing
for src in "${sources[@]}"; do
  case $src in
  results/*) kind=${src#results/} kind=${kind%%/*} base=$tmp/results/$kind ;;
  *) kind=logs base=$tmp/logs ;;
  esac
  while IFS= read -r -d '' f; do
    planned+=("$f:$dest/$kind/${f#"$base/"}")
  done < <(find "$tmp/$src" -type f -print0)
done
log=$(dirname "$archive")/campaign.log
# the host's repository: Snakemake's log names it as its base directory
root=$(grep -rhoP '^\s*Base directory: \K\S+' "$tmp/logs" "$log" 2>/dev/null | head -1 || true)
# where the wheels were installed: the folder Snakemake's command ran from
site=$(grep -rhoP '^\s*Command: \K\S+(?=/snakemake/__main__\.py)' "$tmp/logs" "$log" 2>/dev/null |
  head -1 || true)
[ -f "$log" ] && planned+=("$log:$dest/logs/campaign.log")
for pair in "${planned[@]}"; do
  [ ! -e "${pair#*:}" ] || {
    echo "${pair#*:} exists: not overwritten (import into a new folder)" >&2
    exit 1
  }
done
for pair in "${planned[@]}"; do
  target=${pair#*:}
  mkdir -p "$(dirname "$target")"
  cp "${pair%%:*}" "$target"
  case $target in
  *.log)
    [ -z "$root" ] || sed -i "s#${root}#<repository>#g" "$target"
    [ -z "$site" ] || sed -i "s#${site}/#<site>/#g" "$target"
    sed -i -E 's#(^|[ "=])/[^ "]*/bin/python3?( |$)#\1<python>\2#g' "$target"
    ;;
  esac
done
echo "imported ${#planned[@]} files into $dest"
left=$(grep -rlE '(^|[ "(=])/(home|root|tmp|opt|work|scratch)/' "$dest/logs" 2>/dev/null || true)
[ -z "$left" ] || {
  echo "absolute paths remain in: $left" >&2
  exit 1
}
