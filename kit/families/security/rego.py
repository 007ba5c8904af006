"""The Gatekeeper ConstraintTemplates' Rego, one template per rule so each denial names its rule.
Together they enforce the Pod Security Standards' restricted profile
(https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted) plus kit's own
rules: images from the declared registries only, no :latest, resource limits required.

The Rego is Rego v1 syntax (`contains`, `if`, `in`), which Gatekeeper takes only under
`targets[].code[]: {engine: Rego, source: {version: "v1", rego: ...}}`, from Gatekeeper 3.19 on; the
`rego:` field is parsed as v0 ("Using Rego v1 syntax is opt-in, by default only Rego v0 is allowed";
"No need to add `import rego.v1`": https://open-policy-agent.github.io/gatekeeper/website/docs/constrainttemplates,
"Enable OPA Rego v1 syntax in ConstraintTemplates"; source open-policy-agent/gatekeeper
website/docs/constrainttemplates.md). kit evaluates the very same text with regopy (rego-cpp), the
interpreter it can run here. Gatekeeper passes the object under admission as `input.review.object`
and the Constraint's parameters as `input.parameters`
(https://open-policy-agent.github.io/gatekeeper/website/docs/howto).

The Constraints match the workload kinds as well as Pods: matching Pods only, "the Deployment itself
will not be blocked" and its rollout times out on the ReplicaSet's denied Pods (Gatekeeper,
website/docs/workload-resources.md, which also warns that adding the kinds does nothing when the Rego
reads `spec.containers` only). So the Rego reads the pod spec where each kind keeps it: `spec`,
`spec.template.spec`, `spec.jobTemplate.spec.template.spec`."""
from __future__ import annotations

from dataclasses import dataclass

GATEKEEPER_MIN = "3.19"        # the first Gatekeeper release that takes code[].source.version "v1"
# the kinds the Constraints match (API group -> kinds); each must be one the Rego reads a pod spec of
MATCH_KINDS = ({"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
               {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]},
               {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]})
TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController")

CONTAINERS = '''
pod_spec := input.review.object.spec if input.review.object.kind == "Pod"

pod_spec := input.review.object.spec.template.spec if input.review.object.kind in {''' + \
    ", ".join(f'"{k}"' for k in TEMPLATE_KINDS) + '''}

pod_spec := input.review.object.spec.jobTemplate.spec.template.spec if input.review.object.kind == "CronJob"

containers contains c if some c in object.get(pod_spec, "containers", [])
containers contains c if some c in object.get(pod_spec, "initContainers", [])
containers contains c if some c in object.get(pod_spec, "ephemeralContainers", [])
'''


@dataclass(frozen=True)
class Rule:
    name: str          # the Constraint's metadata.name and the template's lower-case kind
    kind: str          # the ConstraintTemplate's CRD kind
    title: str
    rego: str
    parameters: tuple[str, ...] = ()     # the parameter names (all arrays of strings)


def _rego(package: str, body: str) -> str:
    return f"package {package}\n{CONTAINERS}{body.rstrip()}\n".replace("\t", "  ")


NON_ROOT = Rule("require-non-root", "K8sRequireNonRoot", "containers run as a non-root user", _rego("k8srequirenonroot", '''
pod_ctx := object.get(pod_spec, "securityContext", {})

run_as_non_root(c) if object.get(object.get(c, "securityContext", {}), "runAsNonRoot", object.get(pod_ctx, "runAsNonRoot", false)) == true

run_as_user(c) := object.get(object.get(c, "securityContext", {}), "runAsUser", object.get(pod_ctx, "runAsUser", -1))

violation contains {"msg": msg} if {
	some c in containers
	not run_as_non_root(c)
	msg := sprintf("container %v must set runAsNonRoot: true (restricted profile: running as non-root)", [c.name])
}

violation contains {"msg": msg} if {
	some c in containers
	run_as_user(c) == 0
	msg := sprintf("container %v runs as root (runAsUser: 0)", [c.name])
}
'''))

NO_ESCALATION = Rule("no-privilege-escalation", "K8sNoPrivilegeEscalation", "no privilege escalation, no privileged "
                     "containers", _rego("k8snoprivilegeescalation", '''
violation contains {"msg": msg} if {
	some c in containers
	object.get(object.get(c, "securityContext", {}), "allowPrivilegeEscalation", true) != false
	msg := sprintf("container %v must set allowPrivilegeEscalation: false", [c.name])
}

violation contains {"msg": msg} if {
	some c in containers
	object.get(object.get(c, "securityContext", {}), "privileged", false) == true
	msg := sprintf("container %v is privileged", [c.name])
}
'''))

CAPABILITIES = Rule("restricted-capabilities", "K8sRestrictedCapabilities", "capabilities: drop ALL, add only "
                    "the allowed ones", _rego("k8srestrictedcapabilities", '''
caps(c) := object.get(object.get(c, "securityContext", {}), "capabilities", {})

violation contains {"msg": msg} if {
	some c in containers
	not "ALL" in object.get(caps(c), "drop", [])
	msg := sprintf("container %v must drop ALL capabilities", [c.name])
}

violation contains {"msg": msg} if {
	some c in containers
	some cap in object.get(caps(c), "add", [])
	not cap in input.parameters.allowed
	msg := sprintf("container %v adds the capability %v (allowed: %v)", [c.name, cap, input.parameters.allowed])
}
'''), ("allowed",))

VOLUMES = Rule("restricted-volumes", "K8sRestrictedVolumes", "no hostPath or host namespaces; only the restricted "
               "profile's volume types", _rego("k8srestrictedvolumes", '''
violation contains {"msg": msg} if {
	some v in object.get(pod_spec, "volumes", [])
	v.hostPath
	msg := sprintf("volume %v mounts the host path %v (hostPath is not allowed)", [v.name, v.hostPath.path])
}

violation contains {"msg": msg} if {
	some v in object.get(pod_spec, "volumes", [])
	some key, _ in v
	key != "name"
	not key in input.parameters.allowed
	key != "hostPath"
	msg := sprintf("volume %v has the type %v, which the restricted profile does not allow", [v.name, key])
}

violation contains {"msg": msg} if {
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	object.get(pod_spec, field, false) == true
	msg := sprintf("the pod sets %v: true (host namespaces are not allowed)", [field])
}

violation contains {"msg": msg} if {
	some c in containers
	some p in object.get(c, "ports", [])
	object.get(p, "hostPort", 0) != 0
	msg := sprintf("container %v publishes the host port %v", [c.name, p.hostPort])
}
'''), ("allowed",))

SECCOMP = Rule("seccomp-runtime-default", "K8sSeccompRuntimeDefault", "seccomp RuntimeDefault or Localhost",
               _rego("k8sseccompruntimedefault", '''
pod_type := object.get(object.get(object.get(pod_spec, "securityContext", {}), "seccompProfile", {}), "type", "")

profile(c) := object.get(object.get(object.get(c, "securityContext", {}), "seccompProfile", {}), "type", pod_type)

violation contains {"msg": msg} if {
	some c in containers
	not profile(c) in {"RuntimeDefault", "Localhost"}
	msg := sprintf("container %v must use the seccomp profile RuntimeDefault or Localhost", [c.name])
}
'''))

REGISTRIES = Rule("allowed-registries", "K8sAllowedRegistries", "images come from the declared registries only",
                  _rego("k8sallowedregistries", '''
# a bare name is a Docker Hub image: postgres:15 is docker.io/library/postgres:15
full(image) := image if {
	first := split(image, "/")[0]
	contains(image, "/")
	regex.match(`[.:]|^localhost$`, first)
}

full(image) := concat("/", ["docker.io", image]) if {
	contains(image, "/")
	not regex.match(`[.:]|^localhost$`, split(image, "/")[0])
}

full(image) := concat("/", ["docker.io/library", image]) if not contains(image, "/")

allowed(image) if {
	some prefix in input.parameters.registries
	some sep in ["/", ":", "@"]
	startswith(full(image), concat("", [prefix, sep]))
}

# an exact image admitted on its own: a cluster add-on's pod in the app's namespace (cert-manager's
# HTTP-01 solver), not its whole registry
allowed(image) if full(image) in object.get(input.parameters, "images", [])

violation contains {"msg": msg} if {
	some c in containers
	not allowed(c.image)
	msg := sprintf("container %v: the image %v is not from an allowed registry (%v)", [c.name, c.image, input.parameters.registries])
}
'''), ("registries", "images"))

NO_LATEST = Rule("no-latest-tag", "K8sNoLatestTag", "images name a version: no :latest, no missing tag",
                 _rego("k8snolatesttag", '''
tag(image) := t if {
	not contains(image, "@")
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	t := split(last, ":")[1]
}

violation contains {"msg": msg} if {
	some c in containers
	tag(c.image) == "latest"
	msg := sprintf("container %v uses the :latest tag (%v)", [c.name, c.image])
}

violation contains {"msg": msg} if {
	some c in containers
	not contains(c.image, "@")
	not tag(c.image)
	msg := sprintf("container %v names no tag or digest (%v means :latest)", [c.name, c.image])
}
'''))

LIMITS = Rule("require-limits", "K8sRequireLimits", "every container has CPU and memory limits", _rego("k8srequirelimits", '''
violation contains {"msg": msg} if {
	some c in containers
	some resource in ["cpu", "memory"]
	not object.get(object.get(c, "resources", {}), "limits", {})[resource]
	msg := sprintf("container %v has no %v limit", [c.name, resource])
}
'''))

RULES = (NON_ROOT, NO_ESCALATION, CAPABILITIES, VOLUMES, SECCOMP, REGISTRIES, NO_LATEST, LIMITS)
# the restricted profile's volume types (Pod Security Standards, "Volume Types")
RESTRICTED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret")
