#!/usr/bin/env bash
# End to end on a real cluster (needs docker, kind, kubectl and helm): create the kind cluster from
# kind-config.yaml, build and load the image, install the chart, and run the acceptance scenario with
# kubectl, acting as the sample people by impersonation. Not run in CI here (no Docker engine).
#
#   make e2e-kind                 # KEEP_CLUSTER=1 keeps the cluster afterwards
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER=${CLUSTER:-lockgate}
IMAGE=${IMAGE:-lockgate:e2e}
NS=lockgate-system
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
DIGEST="sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-kind needs $tool on PATH" >&2; exit 2; }
done

step() { printf '\n==> %s\n' "$*"; }
act_as() { local who=$1 groups=$2; shift 2; kubectl --as="$who" --as-group="$groups" --as-group=system:authenticated "$@"; }
cleanup() {
  if [[ $KEEP_CLUSTER != 1 ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "kind cluster $CLUSTER (API audit log on the control plane)"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
kubectl config use-context "kind-$CLUSTER"

step "image $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "namespaces and the web Deployments"
kubectl apply -f examples/00-namespace.yaml
kubectl create namespace staging --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace staging lockgate.dev/environment=staging --overwrite
for ns in staging production; do
  kubectl -n "$ns" create deployment web --image=registry.k8s.io/pause:3.10 --replicas=2 --dry-run=client -o yaml \
    | kubectl apply -f -
  kubectl -n "$ns" rollout status deployment/web --timeout=120s
done

step "helm install (image from kind, people bound with the example roles)"
helm upgrade --install lockgate charts/lockgate --namespace "$NS" --create-namespace --wait --timeout 5m \
  --set image.repository="${IMAGE%%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set 'rbac.workloadNamespaces={staging,production}' \
  --set 'rbac.userRoles.requesterGroups={engineers}' \
  --set 'rbac.userRoles.approverGroups={engineering-leads,security-leads}'
kubectl -n "$NS" rollout status deployment/lockgate --timeout=120s

step "the production GatePolicy"
kubectl apply -f examples/gatepolicy-production.yaml

step "alice requests web:2; bob and carol approve"
cat <<YAML | act_as alice engineers apply -f -
apiVersion: lockgate.dev/v1alpha1
kind: Promotion
metadata: {name: web-2, namespace: production}
spec:
  target: {kind: Deployment, name: web, container: pause}
  image: "registry.k8s.io/pause:3.9"
  change: {description: "e2e release", ticket: CHG-1, author: dave}
  evidence:
    securityScan: {status: Passed, critical: 0, high: 0}
    integrationTests: {status: Passed}
    sbom: {licenses: [MIT]}
  verification: {timeout: 2m, rollbackOnFailure: true}
YAML
kubectl -n production wait --for=jsonpath='{.status.phase}'=AwaitingApproval promo/web-2 --timeout=60s
for who in bob:engineering-leads carol:security-leads; do
  cat <<YAML | act_as "${who%%:*}" "${who##*:}" apply -f -
apiVersion: lockgate.dev/v1alpha1
kind: Approval
metadata: {name: web-2-${who%%:*}, namespace: production}
spec: {promotion: web-2, decision: Approve}
YAML
done
kubectl -n production wait --for=condition=Ready promo/web-2 --timeout=180s
kubectl -n production get promo web-2 -o wide
test "$(kubectl -n production get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}')" \
  = "registry.k8s.io/pause:3.9"

step "a direct image change in production is denied at admission"
if kubectl -n production set image deployment/web pause="registry.k8s.io/pause@$DIGEST" 2>err.txt; then
  echo "FAIL: the direct image change was admitted" >&2; exit 1
fi
grep -q 'guard-deployments.lockgate.dev' err.txt && rm -f err.txt

step "the operator's calls in the API audit log"
docker exec "$CLUSTER-control-plane" sh -c \
  "grep -c 'system:serviceaccount:$NS:lockgate' /var/log/kubernetes/audit/audit.log" || true

echo
echo "e2e-kind: passed"
