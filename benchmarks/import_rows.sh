#!/usr/bin/env bash
# Bring a GPU campaign's rows home as committed reference rows. From ARCHIVE (the results.tgz a
# campaign script leaves in its OUT: results/raw, results/traces, logs) copy what lies below each
# SUBPATH (an experiment and GPU label, memory/h200, or one model's folder, llm/h200/NAME) into
# resources/reference/FOLDER/{raw,traces,logs}/SUBPATH, with campaign.log beside the archive as
# FOLDER/logs/campaign.log. The GPU host's own paths in the logs are written as placeholders
# (<repository>, <site>, <python>, <site-packages>): committed files name no machine's paths.
# Nothing already there is overwritten; a SUBPATH the archive lacks, or a log still naming a
# machine path, stops the import before anything is copied.
#
# usage: benchmarks/import_rows.sh ARCHIVE FOLDER SUBPATH [SUBPATH ...]   (from the repository root)
# then write FOLDER/README.md: the card's UUID, software, configuration, command, what the rows show.
set -euo pipefail
[ $# -ge 3 ] || {
  sed -n 's/^# usage: //p' "$0" >&2
  exit 2
}
archive=$1 dest=resources/reference/$2
# what a machine path looks like: the pattern tests/test_committed_data.py holds committed files to
pattern=$(dirname "$0")/absolute_path.regex
[ -r "$pattern" ] || {
  echo "$pattern is missing: cannot check the logs for machine paths" >&2
  exit 2
}
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
# where the wheels were installed: the folder Snakemake's command ran from (its module, or the
# script a --target install puts in bin/)
site=$(grep -rhoP '^\s*Command: \K\S+(?=/snakemake/__main__\.py|/bin/snakemake\b)' "$tmp/logs" "$log" \
  2>/dev/null | head -1 || true)
if [ -f "$log" ]; then
  cp "$log" "$tmp/campaign.log"
  planned+=("$tmp/campaign.log:$dest/logs/campaign.log")
fi
# each log made free of the host's paths where it lies, before anything is copied
for pair in "${planned[@]}"; do
  f=${pair%%:*}
  [[ $f == *.log ]] || continue
  [ -z "$root" ] || sed -i "s#${root}#<repository>#g" "$f"
  [ -z "$site" ] || sed -i "s#${site}/#<site>/#g" "$f"
  sed -i -E 's#(^|[ "=])/[^ "]*/bin/python3?( |$)#\1<python>\2#g' "$f"
  # a warning's file in the host's Python environment (pytest's output in a campaign log)
  sed -i -E 's#(^|[ "=])/[^ "]*/site-packages/#\1<site-packages>/#g' "$f"
  ! grep -qPf "$pattern" "$f" || {
    echo "an absolute path remains in ${pair#*:} (from $archive): nothing imported" >&2
    exit 1
  }
done
for pair in "${planned[@]}"; do
  [ ! -e "${pair#*:}" ] || {
    echo "${pair#*:} exists: not overwritten (import into a new folder)" >&2
    exit 1
  }
done
for pair in "${planned[@]}"; do
  mkdir -p "$(dirname "${pair#*:}")"
  cp "${pair%%:*}" "${pair#*:}"
done
echo "imported ${#planned[@]} files into $dest"
