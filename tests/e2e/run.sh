#!/usr/bin/env bash
# End-to-end checks of `dualstack controller` + `dualstack agent` on a real cluster.
# See tests/e2e/README.md. Needs KUBECONFIG, kubectl, curl, jq.
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

for tool in kubectl curl jq; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

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
  url="http://$ip:18080/hostname"; [[ $ip == *:* ]] && url="http://[$ip]:18080/hostname"
  wait_for "HTTP answer from $url" curl -fsS --max-time 3 "$url"
  echo "    $url -> $(curl -fsS --max-time 3 "$url")"
done

step "3. externalTrafficPolicy Local keeps the client address"
service e2e-local "$CLASS" Local 18081
wait_for "ingress of both families on e2e-local" has_both_families e2e-local
for ip in $(svc_json e2e-local | jq -r '.status.loadBalancer.ingress[].ip'); do
  url="http://$ip:18081/clientip"; [[ $ip == *:* ]] && url="http://[$ip]:18081/clientip"
  wait_for "HTTP answer from $url" curl -fsS --max-time 3 "$url"
  seen=$(curl -fsS --max-time 3 "$url")
  echo "    $url -> backend saw $seen"
  case "$seen" in
    10.42.*|10.43.*|fd*|*%*) echo "    (warning: $seen looks like a cluster address; run from outside the cluster to check)";;
  esac
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
