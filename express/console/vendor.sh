#!/usr/bin/env bash
# Re-vendors the console's graph-layout library (elkjs, the Eclipse Layout Kernel compiled to
# JavaScript) into static/vendor/, from the npm registry, at the pinned version below.
# Run it by hand to upgrade (change ELKJS_VERSION), then commit static/vendor/. Nothing at build or
# run time needs npm: the console serves the vendored file itself (no CDN, works offline).
set -euo pipefail
ELKJS_VERSION="0.12.1"
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "elkjs@$ELKJS_VERSION" >/dev/null && tar xzf "elkjs-$ELKJS_VERSION.tgz")
test "$(node -p "require('$tmp/package/package.json').version")" = "$ELKJS_VERSION"
mkdir -p "$dest"
cp "$tmp/package/lib/elk.bundled.js" "$dest/elk.bundled.js"
cp "$tmp/package/LICENSE.md" "$dest/elkjs-LICENSE.md"
{
  echo "elkjs $ELKJS_VERSION (npm), lib/elk.bundled.js; license EPL-2.0 OR GPL-3.0-or-later (elkjs-LICENSE.md)"
  echo "sha256 $(sha256sum "$dest/elk.bundled.js" | cut -d' ' -f1)  elk.bundled.js"
} > "$dest/VERSION.txt"
echo "vendored elkjs $ELKJS_VERSION into $dest"
