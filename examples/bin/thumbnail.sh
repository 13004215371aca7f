#!/bin/sh
# Makes a thumbnail for one image job. Input (stdin): a JSON object with
# "image" (a path) and optional "width". Output (stdout): the job result as
# JSON, without a trailing newline (the exec filter keeps stdout byte for
# byte: a newline would end up in the record). Exit 65 (EX_DATAERR) marks a
# record that can never succeed.
#
# Uses ImageMagick's `convert` when it is installed; otherwise it records the
# thumbnail it would have made, so the example runs on any machine.
set -eu
job=$(cat)
image=$(printf '%s' "$job" | sed -n 's/.*"image" *: *"\([^"]*\)".*/\1/p')
width=$(printf '%s' "$job" | sed -n 's/.*"width" *: *\([0-9][0-9]*\).*/\1/p')
[ -n "$image" ] || { echo "no \"image\" in job" >&2; exit 65; }
width=${width:-128}
out="${THUMB_DIR:-.millrace/thumbs}/$(basename "$image").${width}.jpg"
if command -v convert >/dev/null 2>&1 && [ -f "$image" ]; then
  mkdir -p "$(dirname "$out")"
  convert "$image" -thumbnail "${width}x${width}" "$out"
  status=made
else
  status=planned
fi
printf '{"image":"%s","thumbnail":"%s","width":%s,"status":"%s","job":"%s"}' \
  "$image" "$out" "$width" "$status" "${MILLRACE_JOB:-}"
