#!/usr/bin/env bash
# End-to-end checks of `dualstack controller` + `dualstack agent` on a real cluster.
# See tests/e2e/README.md. Needs KUBECONFIG, kubectl, curl, jq.
#
# CI runs these same checks against the API server of tests/kube/ (crates/dualstack/tests/
# kube_e2e.rs), where no kubelet runs Pods and the nodes live in network namespaces; there:
#   E2E_BACKEND=external   the caller has written the EndpointSlices (no Deployment is made)
#   E2E_GET="CMD"          CMD IP PORT PATH prints the answer (default: curl)
#   E2E_CLIENT_IPS="a b"   the client's own addresses: the Local check then requires the
#                          backend to have seen one of them
set -euo pipefail

: "${KUBECONFIG:?set KUBECONFIG to the cluster to test (never run against production)}"
NS=dualstack-e2e
CLASS=${CLASS:-dualstack.io/lb}
TIMEOUT=${TIMEOUT:-90}
IMAGE=${ECHO_IMAGE:-registry.k8s.io/e2e-test-images/agnhost:2.53}

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }
cleanup() { [ "${KEEP:-0}" = 1 ] || kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

for tool in kubectl jq; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
[ -n "${E2E_GET:-}" ] || command -v curl >/dev/null || fail "curl is not installed"

# get IP PORT PATH: one HTTP GET, prints the body.
get() {
  if [ -n "${E2E_GET:-}" ]; then
    $E2E_GET "$1" "$2" "$3"
  else
    local url="http://$1:$2$3"; [[ $1 == *:* ]] && url="http://[$1]:$2$3"
    curl -fsS --max-time 3 "$url"
  fi
}

# wait_for DESCRIPTION COMMAND...: retries COMMAND until it succeeds or TIMEOUT seconds pass.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $what"
    sleep 2
  done
}

svc_json() { kubectl -n "$NS" get service "$1" -o json; }

step "namespace and echo backend"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if [ "${E2E_BACKEND:-deployment}" != external ]; then
kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: $IMAGE
        args: ["netexec", "--http-port=8080"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}}
YAML
kubectl -n "$NS" rollout status deployment/echo --timeout="${TIMEOUT}s" >/dev/null
fi

service() { # NAME CLASS POLICY PORT
  kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  type: LoadBalancer
  loadBalancerClass: $2
  externalTrafficPolicy: $3
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: echo}
  ports: [{name: http, port: $4, targetPort: http}]
YAML
}

has_both_families() {
  svc_json "$1" | jq -e '[.status.loadBalancer.ingress[]?.ip] | (map(select(contains(":"))) | length > 0) and (map(select(contains(":") | not)) | length > 0)'
}

step "1. a dual-stack Service of our class gets both families"
service e2e-cluster "$CLASS" Cluster 18080
wait_for "ingress of both families on e2e-cluster" has_both_families e2e-cluster
json=$(svc_json e2e-cluster)
echo "$json" | jq -e '.status.loadBalancer.ingress | all(.ipMode == "Proxy")' >/dev/null \
  || fail "ipMode is not Proxy: $(echo "$json" | jq -c .status.loadBalancer)"
echo "$json" | jq -e '.status.conditions[] | select(.type == "dualstack.io/LoadBalancerReady" and .status == "True")' >/dev/null \
  || fail "LoadBalancerReady is not True: $(echo "$json" | jq -c .status.conditions)"
echo "$json" | jq -e '.metadata.finalizers | index("service.kubernetes.io/load-balancer-cleanup")' >/dev/null \
  || fail "finalizer missing"

step "2. every ingress address answers"
for ip in $(echo "$json" | jq -r '.status.loadBalancer.ingress[].ip'); do
  wait_for "an answer from $ip port 18080" get "$ip" 18080 /hostname
  echo "    $ip:18080 -> $(get "$ip" 18080 /hostname)"
done

step "3. externalTrafficPolicy Local keeps the client address"
service e2e-local "$CLASS" Local 18081
wait_for "ingress of both families on e2e-local" has_both_families e2e-local
for ip in $(svc_json e2e-local | jq -r '.status.loadBalancer.ingress[].ip'); do
  wait_for "an answer from $ip port 18081" get "$ip" 18081 /clientip
  seen=$(get "$ip" 18081 /clientip)
  echo "    $ip:18081 -> backend saw $seen"
  if [ -n "${E2E_CLIENT_IPS:-}" ]; then
    kept=0
    for c in $E2E_CLIENT_IPS; do [[ " $seen " == *" $c"* || "$seen" == "$c"* ]] && kept=1; done
    [ $kept = 1 ] || fail "the backend saw $seen, not the client ($E2E_CLIENT_IPS)"
  else
    case "$seen" in
      10.42.*|10.43.*|fd*|*%*) echo "    (warning: $seen looks like a cluster address; run from outside the cluster to check)";;
    esac
  fi
done

step "4. a Service of another class is left alone"
service e2e-other example.com/not-ours Cluster 18082
sleep 10
json=$(svc_json e2e-other)
echo "$json" | jq -e '(.status.loadBalancer.ingress // []) | length == 0' >/dev/null || fail "status written on a Service we do not own"
echo "$json" | jq -e '(.metadata.finalizers // []) | length == 0' >/dev/null || fail "finalizer added to a Service we do not own"

step "5. changing the type releases the Service"
kubectl -n "$NS" patch service e2e-cluster --type=merge \
  -p '{"spec":{"type":"ClusterIP","loadBalancerClass":null,"externalTrafficPolicy":null,"allocateLoadBalancerNodePorts":null}}' >/dev/null
released() { svc_json e2e-cluster | jq -e '((.metadata.finalizers // []) | index("service.kubernetes.io/load-balancer-cleanup") | not) and ((.status.loadBalancer.ingress // []) | length == 0)'; }
wait_for "status cleared and finalizer removed" released

echo "PASS"
