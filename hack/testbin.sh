#!/usr/bin/env bash
# Build the real servers the tests run (kube-apiserver, etcd, kubectl, Prometheus 3,
# promtool, prom-label-proxy) from their Go modules with the machine's `go`, once per
# version, into ${XDG_CACHE_HOME:-~/.cache}/mtproxy/testbin/<name>-<version>/.
#
# k8s.io/kubernetes and etcd's server module point their sibling modules at local
# directories through replace directives, so `go install mod@version` refuses them. Each
# is built from a throwaway module that requires it and replaces every such sibling with
# its published version; the list of siblings is read from that version's own go.mod.
#
# Usage: hack/testbin.sh [NAME...]   (no names: everything). Prints, per name, whether it
# was cached or built (and how long that took) and where it is. A binary already in the cache
# is not rebuilt: a warm run only looks at file names. The go commands' output goes to
# <cache>/<name>-<version>.log, whose tail is printed when a build fails.
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}   # module v0.316.0 is Prometheus 3.16.0
PROM_LABEL_PROXY_VERSION=${PROM_LABEL_PROXY_VERSION:-v0.11.1}

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mtproxy/testbin
mkdir -p "$CACHE"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export CGO_ENABLED=0

log() { printf 'testbin: %s\n' "$*"; }

# published_replaces MODULE VERSION SIBLING_VERSION: one `-replace=a=a@v` flag per local
# replace directive in MODULE@VERSION's go.mod, pointing it at SIBLING_VERSION.
published_replaces() {
  local gomod
  # go mod download -json reports a module the proxy refuses in its "Error" field
  gomod=$(go mod download -json "$1@$2" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if info.get("Error") or not info.get("GoMod"):
    sys.exit("go mod download %s: %s" % (sys.argv[1], info.get("Error") or "no go.mod"))
print(info["GoMod"])
' "$1@$2") || return 1
  go mod edit -json "$gomod" | python3 -c '
import json, sys
sibling_version = sys.argv[1]
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    old = r["Old"]["Path"]
    local = "Version" not in new and new["Path"].startswith((".", "/"))
    major = sibling_version.lstrip("v").split(".")[0]
    # A path that must not be used (the FORBIDDEN_DEPENDENCY guards of etcd) is left alone.
    usable = "FORBIDDEN" not in new["Path"] and (major in ("0", "1") or old.endswith("/v" + major))
    if local and usable:
        print("-replace=%s=%s@%s" % (old, old, sibling_version))
' "$3"
}

# build_in_throwaway NAME VERSION MODULE SIBLING_VERSION LDFLAGS PKG[:OUT]...
build_in_throwaway() {
  local name=$1 version=$2 module=$3 sibling=$4 ldflags=$5; shift 5
  local dir=$CACHE/$name-$version
  local all_there=1 outs=()
  for spec in "$@"; do outs+=("${spec#*:}"); [[ -x $dir/${spec#*:} ]] || all_there=0; done
  if (( all_there )); then log "$name $version: cached (${outs[*]}) in $dir"; cached=$((cached + 1)); return; fi
  if ! command -v go >/dev/null 2>&1; then log "$name $version: cannot build, no go on PATH"; return 1; fi
  local started=$SECONDS work buildlog=$CACHE/$name-$version.log
  work=$(mktemp -d)
  log "$name $version: building ${outs[*]} from $module (go output in $buildlog)"
  (
    cd "$work"
    go mod init testbin.local/"$name" || exit 1
    replaces=$(published_replaces "$module" "$version" "$sibling") || exit 1
    if [[ -n $replaces ]]; then go mod edit $replaces || exit 1; fi
    go get "$module@$version" || exit 1
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" || exit 1
    for spec in "$@"; do
      pkg=${spec%%:*} out=${spec#*:}
      go build -mod=mod -trimpath -ldflags "$ldflags" -o "$dir.tmp/$out" "$pkg" || exit 1
    done
  ) >"$buildlog" 2>&1 || {
    rm -rf "$work" "$dir.tmp"
    log "$name $version: FAILED after $((SECONDS - started)) s; the end of $buildlog:"
    tail -n 30 "$buildlog" | sed 's/^/    /'
    return 1
  }
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$work"
  log "$name $version: built in $((SECONDS - started)) s: ${outs[*]} in $dir"
  built=$((built + 1))
}

kubernetes() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local v=k8s.io/component-base/version
  build_in_throwaway kubernetes "$KUBERNETES_VERSION" k8s.io/kubernetes "v0.${KUBERNETES_VERSION#v1.}" \
    "-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver:kube-apiserver k8s.io/kubernetes/cmd/kubectl:kubectl
}
etcd() {
  build_in_throwaway etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "-s -w" \
    go.etcd.io/etcd/server/v3:etcd
}
prometheus() {
  local v=github.com/prometheus/common/version
  local major=${PROMETHEUS_VERSION#v0.}; major=${major:0:1}
  local rest=${PROMETHEUS_VERSION#v0.?}
  local human="$major.$((10#${rest%%.*})).${rest#*.}"
  build_in_throwaway prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
    "-s -w -X $v.Version=$human" \
    github.com/prometheus/prometheus/cmd/prometheus:prometheus github.com/prometheus/prometheus/cmd/promtool:promtool
}
prom_label_proxy() {
  build_in_throwaway prom-label-proxy "$PROM_LABEL_PROXY_VERSION" github.com/prometheus-community/prom-label-proxy \
    "$PROM_LABEL_PROXY_VERSION" "-s -w" github.com/prometheus-community/prom-label-proxy:prom-label-proxy
}

names=("$@")
(( ${#names[@]} )) || names=(etcd prometheus prom_label_proxy kubernetes)
status=0 cached=0 built=0 failed=0 began=$SECONDS
for n in "${names[@]}"; do "${n//-/_}" || { failed=$((failed + 1)); status=1; }; done
log "$cached cached, $built built, $failed failed, in $((SECONDS - began)) s"
exit $status
