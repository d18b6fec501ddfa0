#!/usr/bin/env bash
# Build, push and deploy the CDC consumers and the read API (query-api) to an EKS environment.
#
#   ./scripts/deploy-consumers.sh [--env staging|prod] [--services a,b] [--tag TAG]
#                                 [--dry-run] [--skip-build] [--sign] [--region REGION]
#
# Steps: check tools and AWS identity; create missing ECR repositories; build and push each
# image tagged with the git SHA (skipped when the tag is already in ECR: tags are immutable);
# resolve each tag to its digest in ECR; with --sign, write an SPDX SBOM (syft) and sign the
# image and attest the SBOM by digest (cosign, keyless in CI); render k8s/overlays/<env> with
# the images pinned by digest (`kubectl kustomize`); run the database provision Job and wait for
# it; apply the rest with server-side apply; wait for every rollout; print a summary.
#
# Replica counts are never touched: the manifests carry no `replicas`, and server-side apply
# under the field manager "deploy-consumers" never owns the field, so counts set with
# `kubectl scale`, by the CdcConsumer operator or by query-api's autoscaler survive every deploy.
#
# --dry-run prints the plan and runs only read-only calls (identity, repository and image
# look-ups, rendering, a server-side dry-run apply). Environment: AWS_REGION (default
# eu-west-1), ROLLOUT_TIMEOUT (default 300s), KUBECTL_CONTEXT (default: the current context).
set -euo pipefail

readonly ALL_SERVICES="event-store-writer,stats-aggregator,search-indexer,analytics-flusher,query-api"
readonly NAMESPACE="cdc-consumers"
readonly FIELD_MANAGER="deploy-consumers"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

env_name="staging"
services_csv="$ALL_SERVICES"
tag=""
dry_run=0
offline=0
skip_build=0
sign=0
declare -A digests=()
region="${AWS_REGION:-eu-west-1}"
rollout_timeout="${ROLLOUT_TIMEOUT:-300s}"

die() {
    echo "deploy-consumers: error: $*" >&2
    exit 1
}

log() {
    echo "==> $*"
}

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Runs a command that changes state, or only prints it in a dry run.
run() {
    if ((dry_run)); then
        echo "    [dry-run] would run: $*"
    else
        "$@"
    fi
}

kube() {
    if [[ -n "${KUBECTL_CONTEXT:-}" ]]; then
        kubectl --context "$KUBECTL_CONTEXT" "$@"
    else
        kubectl "$@"
    fi
}

parse_args() {
    while (($#)); do
        case "$1" in
            --env) env_name="${2:?--env needs a value}"; shift 2 ;;
            --env=*) env_name="${1#*=}"; shift ;;
            --services) services_csv="${2:?--services needs a value}"; shift 2 ;;
            --services=*) services_csv="${1#*=}"; shift ;;
            --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
            --tag=*) tag="${1#*=}"; shift ;;
            --region) region="${2:?--region needs a value}"; shift 2 ;;
            --region=*) region="${1#*=}"; shift ;;
            --dry-run) dry_run=1; shift ;;
            --skip-build) skip_build=1; shift ;;
            --sign) sign=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
    case "$env_name" in
        staging | prod) ;;
        *) die "--env must be staging or prod, not '$env_name'" ;;
    esac
    [[ -d "$ROOT/k8s/overlays/$env_name" ]] || die "missing overlay k8s/overlays/$env_name"
    IFS=',' read -r -a services <<<"$services_csv"
    ((${#services[@]})) || die "--services is empty"
    local s
    for s in "${services[@]}"; do
        [[ ",$ALL_SERVICES," == *",$s,"* ]] || die "unknown service '$s' (known: $ALL_SERVICES)"
    done
}

check_tools() {
    local tool missing=()
    local needed=(aws kubectl git)
    ((skip_build)) || needed+=(docker)
    ((sign)) && needed+=(cosign syft)
    for tool in "${needed[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (install them and retry)"
}

resolve_tag() {
    if [[ -z "$tag" ]]; then
        tag="$(git -C "$ROOT" rev-parse --short=12 HEAD)"
        if [[ -n "$(git -C "$ROOT" status --porcelain)" ]]; then
            # An image must be reproducible from its tag: a real deploy refuses a dirty tree;
            # a dry run only shows the plan, so it says so and goes on.
            ((dry_run)) || die "the working tree has uncommitted changes: commit them, or pass --tag explicitly"
            echo "deploy-consumers: note: uncommitted changes; a real deploy would refuse (tag ${tag}-dirty shown)" >&2
            tag="${tag}-dirty"
        fi
    fi
    [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid image tag '$tag'"
}

check_identity() {
    if ! account="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)"; then
        # A dry run shows the plan on a machine without credentials; a real deploy cannot.
        ((dry_run)) || die "no AWS identity: log in (aws sso login / AWS_PROFILE) and retry"
        echo "deploy-consumers: note: no AWS identity; the plan shows account 000000000000" >&2
        account="000000000000"
    fi
    [[ "$account" =~ ^[0-9]{12}$ ]] || die "unexpected AWS account id '$account'"
    registry="$account.dkr.ecr.$region.amazonaws.com"
    if ! context="${KUBECTL_CONTEXT:-$(kubectl config current-context 2>/dev/null)}"; then
        ((dry_run)) || die "no kubectl context: aws eks update-kubeconfig --name cdc-platform-$env_name"
        echo "deploy-consumers: note: no kubectl context; planning offline (no cluster look-ups)" >&2
        context="<none>"
        offline=1
    fi
}

print_plan() {
    log "plan"
    echo "    environment : $env_name (overlay k8s/overlays/$env_name)"
    echo "    AWS account : $account ($region)"
    echo "    kubectl     : $context, namespace $NAMESPACE"
    echo "    services    : ${services[*]}"
    echo "    image tag   : $tag$( ((skip_build)) && echo ' (no build: must already be in ECR)')"
    ((dry_run)) && echo "    mode        : dry run (nothing is changed)"
    return 0
}

ensure_repository() {
    local repo="cdc-platform/$1"
    if aws ecr describe-repositories --region "$region" --repository-names "$repo" >/dev/null 2>&1; then
        echo "    ECR repository $repo exists"
        return
    fi
    log "creating ECR repository $repo"
    run aws ecr create-repository --region "$region" --repository-name "$repo" \
        --image-tag-mutability IMMUTABLE \
        --image-scanning-configuration scanOnPush=true \
        --encryption-configuration encryptionType=KMS \
        --query repository.repositoryUri --output text
}

image_exists() {
    aws ecr describe-images --region "$region" --repository-name "cdc-platform/$1" \
        --image-ids "imageTag=$tag" >/dev/null 2>&1
}

build_and_push() {
    local svc="$1" image="$registry/cdc-platform/$1:$tag"
    if image_exists "$svc"; then
        echo "    $image is already in ECR (tags are immutable): not rebuilt"
        return
    fi
    if ((skip_build)); then
        ((dry_run)) && { echo "    [dry-run] $image is not in ECR yet: a real run would fail"; return; }
        die "--skip-build, but $image is not in ECR: build it first"
    fi
    log "building $image"
    run docker build --file "$ROOT/docker/service/Dockerfile" --build-arg "SERVICE=$svc" \
        --build-arg "PACKAGE=${svc//-/_}" --tag "$image" "$ROOT"
    run docker push "$image"
}

# The digest ECR holds for the image's tag: what the manifests pin, so a node always runs the
# bytes that were built and scanned, whatever a tag may later point at.
resolve_digest() {
    local svc="$1" digest
    digest="$(aws ecr describe-images --region "$region" --repository-name "cdc-platform/$svc" \
        --image-ids "imageTag=$tag" --query 'imageDetails[0].imageDigest' --output text \
        2>/dev/null)" || digest=""
    if [[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
        digests[$svc]="$digest"
        echo "    $registry/cdc-platform/$svc:$tag -> $digest"
    elif ((dry_run)); then
        echo "    [dry-run] $registry/cdc-platform/$svc:$tag is not in ECR yet: its digest is pinned after the push"
    else
        die "no digest in ECR for cdc-platform/$svc:$tag (did the push fail?)"
    fi
}

# An SPDX SBOM of the image, then cosign signs the image and attests the SBOM, both by digest.
sign_image() {
    local svc="$1" ref
    [[ -n "${digests[$svc]:-}" ]] || return 0
    ref="$registry/cdc-platform/$svc@${digests[$svc]}"
    log "SBOM and signature of $ref"
    run syft "$ref" --output "spdx-json=$ROOT/.deploy-sbom-$svc.spdx.json"
    run cosign sign --yes "$ref"
    run cosign attest --yes --type spdxjson --predicate "$ROOT/.deploy-sbom-$svc.spdx.json" "$ref"
}

docker_login() {
    ((skip_build)) && return
    if ((dry_run)); then
        echo "    [dry-run] would log docker in to $registry"
        return
    fi
    aws ecr get-login-password --region "$region" |
        docker login --username AWS --password-stdin "$registry" >/dev/null
}

owner_kind() {
    kube get deployment "$1" --namespace "$NAMESPACE" --ignore-not-found \
        --output 'jsonpath={.metadata.ownerReferences[0].kind}'
}

current_image() {
    kube get deployment "$1" --namespace "$NAMESPACE" --ignore-not-found \
        --output 'jsonpath={.spec.template.spec.containers[0].image}'
}

render() {
    workdir="$(mktemp -d "$ROOT/.deploy-render.XXXXXX")"
    trap 'rm -rf "$workdir"' EXIT
    local svc image kfile="$workdir/kustomization.yaml"
    {
        echo "apiVersion: kustomize.config.k8s.io/v1beta1"
        echo "kind: Kustomization"
        echo "resources:"
        echo "  - ../k8s/overlays/$env_name"
        echo "images:"
    } >"$kfile"
    IFS=',' read -r -a all <<<"$ALL_SERVICES"
    for svc in "${all[@]}"; do
        # The overlay contains every consumer: applying it over a Deployment the CdcConsumer
        # operator owns would make the two fight over it.
        if ((!offline)) && [[ "$(owner_kind "$svc")" == "CdcConsumer" ]]; then
            die "deployment/$svc is managed by the CdcConsumer operator: update its CdcConsumer's
    spec.image instead, and drop $svc from k8s/base/kustomization.yaml for this cluster"
        fi
        if [[ " ${services[*]} " == *" $svc "* ]]; then
            if [[ -n "${digests[$svc]:-}" ]]; then
                image="$registry/cdc-platform/$svc@${digests[$svc]}"
            else
                image="$registry/cdc-platform/$svc:$tag"  # a dry run before the first push
            fi
        else
            # Not being deployed: keep what runs now, so the apply leaves it alone.
            if ((offline)); then
                image="$registry/cdc-platform/$svc:current"
            else
                image="$(current_image "$svc")"
            fi
            [[ -n "$image" ]] ||
                die "$svc is not deployed in $NAMESPACE yet: add it to --services"
        fi
        if [[ "$image" == *@sha256:* ]]; then
            printf '  - name: cdc-platform/%s\n    newName: %s\n    digest: %s\n' \
                "$svc" "${image%@*}" "${image##*@}" >>"$kfile"
        else
            printf '  - name: cdc-platform/%s\n    newName: %s\n    newTag: %s\n' \
                "$svc" "${image%:*}" "${image##*:}" >>"$kfile"
        fi
    done
    rendered="$workdir/rendered.yaml"
    kube kustomize "$workdir" >"$rendered" || die "kubectl kustomize failed for $env_name"
    if grep -Eq '^    replicas:' "$rendered"; then
        die "the rendered manifests set replicas: that would undo kubectl scale; remove it"
    fi
    echo "    rendered $(grep -c '^kind:' "$rendered") objects"
}

# Each PostgreSQL service's login and database (k8s/base/db/provision-job.yaml) before the
# consumers that use them: the previous run's Job is deleted (a Job's template is immutable),
# this one applied alone and waited for; the full apply then finds it unchanged.
provision_databases() {
    local args=(apply --server-side --field-manager "$FIELD_MANAGER" --force-conflicts
        --filename "$rendered" --selector app.kubernetes.io/component=provision)
    grep -q '^  name: db-provision$' "$rendered" || return 0
    if ((dry_run)); then
        echo "    [dry-run] would delete job/db-provision, apply it alone and wait for it"
        return
    fi
    log "provisioning the services' database logins (job/db-provision)"
    kube delete job db-provision --namespace "$NAMESPACE" --ignore-not-found >/dev/null
    kube "${args[@]}"
    kube wait --for=condition=complete job/db-provision --namespace "$NAMESPACE" \
        --timeout "$rollout_timeout" ||
        die "job/db-provision did not complete within $rollout_timeout. Its log:
    kubectl -n $NAMESPACE logs job/db-provision"
}

apply() {
    local args=(apply --server-side --field-manager "$FIELD_MANAGER" --force-conflicts
        --filename "$rendered")
    if ((dry_run && offline)); then
        log "no cluster to validate against (offline plan): skipping the server-side dry run"
        return
    fi
    if ((dry_run)); then
        log "validating against the cluster (server-side dry run)"
        kube "${args[@]}" --dry-run=server >/dev/null
        return
    fi
    log "applying k8s/overlays/$env_name"
    kube "${args[@]}"
}

wait_for_rollouts() {
    local svc
    for svc in "${services[@]}"; do
        if ((dry_run)); then
            echo "    [dry-run] would wait for deployment/$svc"
            continue
        fi
        log "waiting for deployment/$svc"
        kube rollout status "deployment/$svc" --namespace "$NAMESPACE" \
            --timeout "$rollout_timeout" ||
            die "deployment/$svc did not roll out within $rollout_timeout. Inspect it with
    kubectl -n $NAMESPACE describe deployment/$svc
and roll back with
    kubectl -n $NAMESPACE rollout undo deployment/$svc"
    done
}

summary() {
    local svc replicas
    log "summary ($env_name)"
    printf '    %-20s %-10s %s\n' SERVICE REPLICAS IMAGE
    for svc in "${services[@]}"; do
        if ((dry_run)); then
            replicas="-"
        else
            replicas="$(kube get deployment "$svc" --namespace "$NAMESPACE" \
                --output 'jsonpath={.spec.replicas}')"
        fi
        printf '    %-20s %-10s %s\n' "$svc" "$replicas" \
            "$registry/cdc-platform/$svc${digests[$svc]:+@${digests[$svc]}} ($tag)"
    done
    ((dry_run)) && echo "    dry run: nothing was changed"
    return 0
}

main() {
    parse_args "$@"
    check_tools
    resolve_tag
    check_identity
    print_plan
    log "ECR repositories"
    local svc
    for svc in "${services[@]}"; do ensure_repository "$svc"; done
    docker_login
    for svc in "${services[@]}"; do build_and_push "$svc"; done
    log "image digests"
    for svc in "${services[@]}"; do resolve_digest "$svc"; done
    if ((sign)); then
        for svc in "${services[@]}"; do sign_image "$svc"; done
    fi
    log "rendering k8s/overlays/$env_name"
    render
    provision_databases
    apply
    wait_for_rollouts
    summary
}

main "$@"
