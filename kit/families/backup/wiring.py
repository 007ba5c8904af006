"""Whether the in-cluster backup is wired: rules over the objects `kubectl kustomize k8s/overlays/ENV`
builds (backup/k8s is a component of every overlay) and Velero's backup/k8s/velero/ENV.yaml.

pgBackRest's TLS server, from its documentation (pgbackrest.org/command.html#command-server and
pgbackrest.org/configuration.html, sections "Stanza" pg-host-* and "Server" tls-server-*):
- `pgbackrest server` listens on tls-server-address (default localhost: unreachable from another pod)
  and tls-server-port (default 8432);
- it sends tls-server-cert-file / tls-server-key-file and checks client certificates against
  tls-server-ca-file, then authorises the client certificate's CN for the stanzas tls-server-auth
  lists (`CN=stanza1,stanza2` or `CN=*`);
- the client (the repository host: the backup CronJob) names pg1-host, pg1-host-type=tls,
  pg1-host-port (default 8432), and its own pg1-host-cert-file / pg1-host-key-file, verifying the
  server with pg1-host-ca-file; the client checks the server certificate's names against pg1-host
  (pgBackRest src/common/io/tls/client.c, tlsClientHostVerify).
Kubernetes adds: pg1-host POD.SERVICE resolves only through the StatefulSet's governing Service,
which must be headless (kubernetes.io/docs/concepts/services-networking/dns-pod-service/, "Pods":
a StatefulSet pod's hostname.subdomain record exists for a headless Service; the record is the pod's IP,
so no Service port is involved); and with the overlays' default-deny-all NetworkPolicy, a policy
must let the CronJob's pods out to the database pod on that port and one let them in.
"""
from __future__ import annotations

import configparser
import re
import shlex

import yaml

from kit.core.k8s import matches

DEFAULT_TLS_PORT = 8432     # tls-server-port and pg-host-port default (pgbackrest.org/command.html)
CONF_PATH = "/etc/pgbackrest/pgbackrest.conf"


def parse_conf(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def _pod(obj: dict) -> tuple[dict, dict]:
    if obj.get("kind") == "CronJob":
        tpl = obj["spec"]["jobTemplate"]["spec"]["template"]
    else:
        tpl = obj["spec"]["template"]
    return tpl.get("metadata", {}), tpl.get("spec", {})


def _conf_of(container: dict, pod: dict, configmaps: dict[str, dict]) -> str | None:
    """The pgbackrest.conf text a container reads: the ConfigMap key mounted at CONF_PATH."""
    for mount in container.get("volumeMounts", []):
        if mount.get("mountPath") != CONF_PATH:
            continue
        volume = next((v for v in pod.get("volumes", []) if v.get("name") == mount.get("name")), {})
        cm = configmaps.get((volume.get("configMap") or {}).get("name", ""))
        if cm is not None:
            return (cm.get("data") or {}).get(mount.get("subPath", "pgbackrest.conf"))
    return None


def _secret_under(path: str, container: dict, pod: dict) -> str | None:
    """The Secret mounted in the container at a folder holding `path`."""
    for mount in container.get("volumeMounts", []):
        if path.startswith(mount.get("mountPath", "").rstrip("/") + "/"):
            volume = next((v for v in pod.get("volumes", []) if v.get("name") == mount.get("name")), {})
            return (volume.get("secret") or {}).get("secretName")
    return None


def _policy_allows(policies: list[dict], selected: dict, peer: dict, port: int, direction: str) -> bool:
    """Some NetworkPolicy selecting the pod labels `selected` allows traffic with the pods labelled
    `peer` on `port`, in `direction` (ingress: from; egress: to)."""
    key, peers = ("ingress", "from") if direction == "ingress" else ("egress", "to")
    for pol in policies:
        spec = pol.get("spec", {})
        if not matches((spec.get("podSelector") or {}).get("matchLabels", {}), selected) \
                and spec.get("podSelector") not in ({}, None):
            continue
        for rule in spec.get(key) or []:
            ports = [p.get("port") for p in rule.get("ports") or []]
            if ports and port not in ports:
                continue
            for p in rule.get(peers) or []:
                if "podSelector" in p and "namespaceSelector" not in p and \
                        matches((p["podSelector"] or {}).get("matchLabels", {}), peer):
                    return True
    return False


def tls_pairing_problems(objects: list[dict], env_docs: list[dict]) -> list[str]:
    """The backup CronJob's pg1-host settings, the database pod's `pgbackrest server` and its
    tls-server-* settings, the certificates, the Service and the NetworkPolicies agree."""
    by_kind: dict[str, list[dict]] = {}
    for obj in [*objects, *env_docs]:
        by_kind.setdefault(obj.get("kind", ""), []).append(obj)
    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    certs = {o["spec"].get("secretName"): o for o in by_kind.get("Certificate", [])}
    problems: list[str] = []
    crons = [c for c in by_kind.get("CronJob", [])
             if any(_conf_of(k, _pod(c)[1], configmaps) for k in _pod(c)[1].get("containers", []))]
    if not crons:
        return ["no CronJob reads a pgbackrest.conf from a ConfigMap"]
    for cron in crons:
        where = f"CronJob/{cron['metadata']['name']}"
        cmeta, cpod = _pod(cron)
        ccont = next(k for k in cpod["containers"] if _conf_of(k, cpod, configmaps))
        client = parse_conf(_conf_of(ccont, cpod, configmaps) or "")
        stanzas = [s for s in client if s != "global" and "pg1-host" in client[s]]
        if not stanzas:
            problems.append(f"{where}: its pgbackrest.conf names no pg1-host (the repository host needs one)")
            continue
        stanza = stanzas[0]
        c = {**client.get("global", {}), **client[stanza]}
        if c.get("pg1-host-type") != "tls":
            problems.append(f"{where}: pg1-host-type is {c.get('pg1-host-type', 'ssh (the default)')}, not tls")
        host, port = c.get("pg1-host", ""), int(c.get("pg1-host-port", DEFAULT_TLS_PORT))
        pod_name, _, svc_name = host.partition(".")
        svc_name = svc_name.split(".")[0]
        sts = next((s for s in by_kind.get("StatefulSet", [])
                    if pod_name.rsplit("-", 1)[0] == s["metadata"]["name"] and re.fullmatch(r".+-\d+", pod_name)), None)
        if sts is None:
            problems.append(f"{where}: pg1-host {host} names no pod of a StatefulSet in the overlay")
            continue
        if sts["spec"].get("serviceName") != svc_name:
            problems.append(f"{where}: pg1-host {host}: StatefulSet/{sts['metadata']['name']}'s governing Service "
                            f"is {sts['spec'].get('serviceName')}, not {svc_name}")
        smeta, spod = _pod(sts)
        server = next((k for k in spod.get("containers", [])
                       if "server" in shlex.split(" ".join(map(str, k.get("command", []) + k.get("args", []))))
                       and any("pgbackrest" in str(w) for w in k.get("command", []))), None)
        if server is None:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: no container runs `pgbackrest server`")
            continue
        sconf_text = _conf_of(server, spod, configmaps)
        if sconf_text is None:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: the pgbackrest server reads no "
                            f"pgbackrest.conf from a ConfigMap at {CONF_PATH}")
            continue
        sconf = parse_conf(sconf_text)
        s = sconf.get("global", {})
        if s.get("tls-server-address", "localhost") in ("localhost", "127.0.0.1", "::1"):
            problems.append(f"StatefulSet/{sts['metadata']['name']}: tls-server-address is "
                            f"{s.get('tls-server-address', 'localhost (the default)')}: the server is unreachable from "
                            "the backup pod (set tls-server-address=*)")
        sport = int(s.get("tls-server-port", DEFAULT_TLS_PORT))
        if sport != port:
            problems.append(f"{where}: pg1-host-port {port} but the server's tls-server-port is {sport}")
        if port not in [p.get("containerPort") for p in server.get("ports", [])]:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: the pgbackrest container declares no containerPort {port}")
        if stanza not in sconf:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: the server's pgbackrest.conf has no stanza [{stanza}]")
        elif sconf[stanza].get("pg1-path") != c.get("pg1-path"):
            problems.append(f"{where}: pg1-path {c.get('pg1-path')} but the server's is {sconf[stanza].get('pg1-path')}")
        for opt in ("tls-server-cert-file", "tls-server-key-file", "tls-server-ca-file"):
            if opt not in s:
                problems.append(f"StatefulSet/{sts['metadata']['name']}: {opt} is not set")
        server_secret = _secret_under(s.get("tls-server-cert-file", ""), server, spod)
        client_secret = _secret_under(c.get("pg1-host-cert-file", ""), ccont, cpod)
        for opt in ("pg1-host-cert-file", "pg1-host-key-file", "pg1-host-ca-file"):
            if opt not in c:
                problems.append(f"{where}: {opt} is not set")
            elif _secret_under(c[opt], ccont, cpod) is None:
                problems.append(f"{where}: {opt} {c[opt]} is not in a mounted Secret")
        scert, ccert = certs.get(server_secret), certs.get(client_secret)
        if scert is None:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: no Certificate writes the server's Secret {server_secret}")
        elif host not in (scert["spec"].get("dnsNames") or []):
            problems.append(f"Certificate/{scert['metadata']['name']}: dnsNames {scert['spec'].get('dnsNames')} "
                            f"do not include pg1-host {host} (the client verifies the name)")
        if ccert is None:
            problems.append(f"{where}: no Certificate writes the client's Secret {client_secret}")
        else:
            cn = ccert["spec"].get("commonName", "")
            auth = dict(part.split("=", 1) for part in s.get("tls-server-auth", "").split() if "=" in part)
            allowed = auth.get(cn, "").split(",")
            if stanza not in allowed and "*" not in allowed:
                problems.append(f"StatefulSet/{sts['metadata']['name']}: tls-server-auth "
                                f"'{s.get('tls-server-auth', '')}' does not authorise the client CN {cn} for the stanza {stanza}")
        if scert is not None and ccert is not None and \
                scert["spec"].get("issuerRef", {}).get("name") != ccert["spec"].get("issuerRef", {}).get("name"):
            problems.append("the server and client certificates come from different issuers: neither CA file "
                            "verifies the other side")
        svc = next((v for v in by_kind.get("Service", []) if v["metadata"]["name"] == svc_name), None)
        if svc is None:
            problems.append(f"{where}: pg1-host {host}: no Service {svc_name}")
        elif svc["spec"].get("clusterIP") != "None":
            problems.append(f"Service/{svc_name}: not headless (clusterIP: None): {host} has no DNS record")
        policies = by_kind.get("NetworkPolicy", [])
        db_labels, job_labels = smeta.get("labels", {}), cmeta.get("labels", {})
        if not _policy_allows(policies, db_labels, job_labels, port, "ingress"):
            problems.append(f"no NetworkPolicy lets {where}'s pods into {sts['metadata']['name']} on {port}")
        if not _policy_allows(policies, job_labels, db_labels, port, "egress"):
            problems.append(f"no NetworkPolicy lets {where}'s pods out to {sts['metadata']['name']} on {port}")
        wide = [p["metadata"]["name"] for p in policies
                if matches((p["spec"].get("podSelector") or {}).get("matchLabels", {}), db_labels)
                for rule in p["spec"].get("ingress") or []
                if port in [q.get("port") for q in rule.get("ports") or []]
                for peer in rule.get("from") or [{}]
                if not matches((peer.get("podSelector") or {}).get("matchLabels", {}), job_labels)]
        if wide:
            problems.append(f"NetworkPolicy {', '.join(sorted(set(wide)))}: lets other pods than the backup job "
                            f"reach pgBackRest's TLS server on {port}")
    return problems


def namespace_problems(env: str, namespace: str, objects: list[dict], env_docs: list[dict]) -> list[str]:
    """The backup objects land in the overlay's namespace and Velero's Schedule backs that one up."""
    problems = []
    for obj in objects:
        labels = obj.get("metadata", {}).get("labels", {})
        if labels.get("app.kubernetes.io/name", "").endswith("-backup") and obj["metadata"].get("namespace") != namespace:
            problems.append(f"{env}: {obj['kind']}/{obj['metadata']['name']} is in namespace "
                            f"{obj['metadata'].get('namespace')}, not the overlay's {namespace}")
    if not any(o.get("kind") == "CronJob" for o in objects):
        problems.append(f"{env}: the overlay builds no backup CronJob (does it include backup/k8s as a component?)")
    schedules = [d for d in env_docs if d.get("kind") == "Schedule"]
    if not schedules:
        problems.append(f"{env}: backup/k8s/velero/{env}.yaml has no Velero Schedule")
    for s in schedules:
        included = ((s.get("spec") or {}).get("template") or {}).get("includedNamespaces") or []
        if included != [namespace]:
            problems.append(f"{env}: Schedule/{s['metadata']['name']} includes {included}, not the overlay's "
                            f"namespace [{namespace}]")
    return problems


def alert_namespace_problems(alerts_text: str, namespaces: list[str]) -> list[str]:
    """Each backup alert selects the overlays' namespaces: its namespace matcher (PromQL regex
    matchers are fully anchored, prometheus.io/docs/prometheus/latest/querying/basics/) matches
    every overlay namespace the CronJob runs in."""
    problems = []
    doc = yaml.safe_load(alerts_text) or {}
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            m = re.search(r'namespace(=~|=)"([^"]*)"', rule.get("expr", ""))
            if not m:
                problems.append(f"alert {rule.get('alert')}: no namespace matcher")
                continue
            op, value = m.groups()
            missed = [n for n in namespaces if not (re.fullmatch(value, n) if op == "=~" else value == n)]
            if missed:
                problems.append(f"alert {rule.get('alert')}: namespace{op}\"{value}\" misses {', '.join(missed)}")
    return problems


# a kubectl command: at the start of a line (a code block) or inside backticks; not `kubectl kustomize`
KUBECTL = re.compile(r"(?:^|`)(kubectl\s+(?!kustomize\b|version\b)[^\n`]*)", re.MULTILINE)


def runbook_problems(text: str, built: dict[str, list[dict]], files: dict[str, str] | None = None) -> list[str]:
    """Every object a kubectl command of the runbook names (-n NS, kind/name, get KIND NAME, --from=cronjob/X,
    -l label=value) exists in some overlay's build, in that namespace; and every object a manifest it applies
    (-f FILE) refers to (ServiceAccount, PVC of a StatefulSet's volumeClaimTemplates, ConfigMap, Secret)."""
    problems = []
    by_ns: dict[str, list[dict]] = {}
    for objects in built.values():
        for o in objects:
            by_ns.setdefault(o.get("metadata", {}).get("namespace", ""), []).append(o)
    aliases = {"statefulset": "StatefulSet", "sts": "StatefulSet", "cronjob": "CronJob",
               "deployment": "Deployment", "service": "Service", "configmap": "ConfigMap"}
    if files is not None:
        problems += _velero_refs(text, files)
    for line in KUBECTL.findall(text.replace("\\\n", " ")):
        short = line.strip()[:70]
        ns_m = re.search(r"(?:-n|--namespace)[ =](\S+)", line)
        if not ns_m:
            problems.append(f"`{short}`: names no namespace (-n)")
            continue
        ns = ns_m.group(1)
        objs = by_ns.get(ns)
        if objs is None:
            problems.append(f"`{short}`: namespace {ns} is not one an overlay builds "
                            f"({', '.join(sorted(n for n in by_ns if n))})")
            continue
        refs = re.findall(r"(?:^|[\s=])(statefulset|sts|cronjob|deployment|service|configmap)/([\w.-]+)", line)
        get = re.search(r"\bget\s+(cronjob|statefulset|deployment|service)\s+([\w.-]+)", line)
        if get:
            refs.append(get.groups())
        for kind, name in refs:
            k = aliases[kind]
            if not any(o.get("kind") == k and o["metadata"]["name"] == name for o in objs):
                problems.append(f"`{short}`: no {k}/{name} in namespace {ns}")
        for key, value in re.findall(r"-l\s+([\w./-]+)=([\w.-]+)", line):
            if not any(_labels_of(o).get(key) == value for o in objs):
                problems.append(f"`{short}`: no object in {ns} carries the label {key}={value}")
        for path in re.findall(r"\s-f\s+(\S+)", line):
            if files is None:
                continue
            if path not in files:
                problems.append(f"`{short}`: {path} is not a generated file")
                continue
            for doc in (d for d in yaml.safe_load_all(files[path]) if d):
                problems += [f"{path}: {p}" for p in _pod_refs(doc, objs, ns)]
    return problems


def _velero_refs(text: str, files: dict[str, str]) -> list[str]:
    """`velero restore create --from-schedule S --include-namespaces NS`: S is a generated Schedule
    (backup/k8s/velero/ENV.yaml) that backs up NS."""
    schedules = {}
    for rel, body in files.items():
        if rel.startswith("backup/k8s/velero/"):
            for d in yaml.safe_load_all(body):
                if d and d.get("kind") == "Schedule":
                    schedules[d["metadata"]["name"]] = d["spec"]["template"].get("includedNamespaces") or []
    problems = []
    for name, ns in re.findall(r"velero restore create --from-schedule (\S+) --include-namespaces (\S+)", text):
        if name not in schedules:
            problems.append(f"`velero restore create --from-schedule {name}`: no such generated Schedule "
                            f"({', '.join(sorted(schedules))})")
        elif ns not in schedules[name]:
            problems.append(f"`velero restore create --from-schedule {name}`: the Schedule backs up "
                            f"{schedules[name]}, not {ns}")
    return problems


def _created_secrets(objs: list[dict]) -> set[str]:
    names = {o["metadata"]["name"] for o in objs if o.get("kind") == "Secret"}
    names |= {(o["spec"].get("target") or {}).get("name") or o["metadata"]["name"]
              for o in objs if o.get("kind") == "ExternalSecret"}
    names |= {o["spec"].get("secretName") for o in objs if o.get("kind") == "Certificate"}
    return names


def _pod_refs(doc: dict, objs: list[dict], ns: str) -> list[str]:
    """What a Pod manifest refers to, against the namespace's built objects."""
    if doc.get("kind") != "Pod":
        return []
    spec, problems = doc.get("spec", {}), []
    names = {(o.get("kind"), o["metadata"]["name"]) for o in objs}
    account = spec.get("serviceAccountName", "default")
    if account != "default" and ("ServiceAccount", account) not in names:
        problems.append(f"ServiceAccount {account} is not in {ns}")
    for vol in spec.get("volumes", []):
        if "configMap" in vol and ("ConfigMap", vol["configMap"].get("name")) not in names:
            problems.append(f"ConfigMap {vol['configMap'].get('name')} is not in {ns}")
        if "secret" in vol and vol["secret"].get("secretName") not in _created_secrets(objs):
            problems.append(f"nothing in {ns} creates the Secret {vol['secret'].get('secretName')}")
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            m = re.fullmatch(r"(\w[\w-]*?)-([\w-]+)-(\d+)", claim)
            ok = m and any(o.get("kind") == "StatefulSet" and o["metadata"]["name"] == m.group(2)
                           and int(m.group(3)) < int(o["spec"].get("replicas", 1))
                           and any(t["metadata"]["name"] == m.group(1) for t in o["spec"].get("volumeClaimTemplates", []))
                           for o in objs)
            if not ok:
                problems.append(f"PVC {claim} is not one a StatefulSet's volumeClaimTemplates create in {ns}")
    return problems


def _labels_of(obj: dict) -> dict:
    labels = dict(obj.get("metadata", {}).get("labels", {}))
    if obj.get("kind") == "CronJob":
        labels.update(_pod(obj)[0].get("labels", {}))
    return labels


def trusted_namespaces(terraform: str, service: str) -> set[str]:
    """The namespaces whose `<service>-backup` ServiceAccount the cloud identity trusts: AWS IRSA's
    `system:serviceaccount:NS:SA` subjects, GCP's `svc.id.goog[NS/SA]` members, Azure's federated
    credential subjects; a `for_each = toset([...])` over them counts each listed namespace."""
    sa = re.escape(f"{service}-backup")
    found = set(re.findall(rf"system:serviceaccount:([a-z0-9-]+):{sa}\b", terraform))
    found |= set(re.findall(rf"svc\.id\.goog\[([a-z0-9-]+)/{sa}\]", terraform))
    if re.search(rf"(system:serviceaccount:\$\{{each\.value\}}:{sa}|svc\.id\.goog\[\$\{{each\.value\}}/{sa}\])",
                 terraform):
        for block in re.findall(r"for_each\s*=\s*toset\(\[([^\]]*)\]\)", terraform):
            found |= set(re.findall(r'"([a-z0-9-]+)"', block))
    return found


def identity_namespace_problems(terraform: str, service: str, namespaces: list[str]) -> list[str]:
    """The backup jobs run as `<service>-backup` in each overlay's namespace (<ns>-<env>): a cloud identity
    that trusts another namespace (e.g. the base `<service>`) is never assumed, and every backup and
    archive-push fails with an authorization error (AWS: sts AssumeRoleWithWebIdentity denied)."""
    if not terraform or f"{service}-backup" not in terraform:
        return []
    trusted = trusted_namespaces(terraform, service)
    out = [f"backup/terraform/main.tf: the backup identity does not trust {service}-backup in {ns} (it trusts "
           f"{', '.join(sorted(trusted)) or 'none'})" for ns in namespaces if ns not in trusted]
    out += [f"backup/terraform/main.tf: the backup identity trusts {ns}, where no overlay runs the backup"
            for ns in sorted(trusted - set(namespaces))]
    return out
