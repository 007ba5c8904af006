"""Hardening measured in the running container: the image run as compose and the Kubernetes
Deployment run it (read-only root filesystem, tmpfs /tmp, cap_drop ALL, no-new-privileges), then
probed from inside with the image's own Python: PID 1's effective capabilities and NoNewPrivs from
/proc/1/status, setuid/setgid files, shells and package managers, and a write to the root
filesystem that must fail."""
from __future__ import annotations

import json
import time

from kit.evidence import Evidence

PROBE = r'''
import errno, json, os, stat
status = dict(l.split(":\t", 1) for l in open("/proc/1/status").read().splitlines() if ":\t" in l)
suid = []
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for f in files:
        p = os.path.join(root, f)
        try:
            m = os.lstat(p).st_mode
        except OSError:
            continue
        if stat.S_ISREG(m) and m & (stat.S_ISUID | stat.S_ISGID):
            suid.append(p)
paths = os.environ.get("PATH", "").split(":") + ["/bin", "/sbin", "/usr/bin", "/usr/sbin"]
def present(names):
    return sorted({n for n in names for d in paths if os.path.isfile(os.path.join(d, n))})
writes = {}
for target in ("/kit-write-probe", os.path.join(os.getcwd(), "kit-write-probe")):
    try:
        open(target, "w").close()
        writes[target] = "written"
    except OSError as exc:
        writes[target] = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({"CapEff": status.get("CapEff", "").strip(), "CapPrm": status.get("CapPrm", "").strip(),
                  "CapBnd": status.get("CapBnd", "").strip(), "NoNewPrivs": status.get("NoNewPrivs", "").strip(),
                  "Uid": status.get("Uid", "").split()[:1], "Name": status.get("Name", "").strip(),
                  "suid": sorted(suid), "shells": present(["sh", "bash", "dash", "ash", "zsh", "busybox"]),
                  "package_managers": present(["apt", "apt-get", "dpkg", "pip", "pip3", "apk", "yum", "dnf", "microdnf"]),
                  "writes": writes}))
'''
SETTINGS = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"]


def measure(image: str, spec) -> Evidence:
    from kit.sandbox.engine import docker, run_labels
    from kit.sandbox.run import placeholder_secrets
    env = {**dict(spec.all_env()), **placeholder_secrets(spec)}     # sandbox-only values, as the container run
    labels = [arg for k, v in run_labels().items() for arg in ("--label", f"{k}={v}")]
    record = Evidence("security.hardening", image, "hardening measured in the running container: no effective "
                      "capability, NoNewPrivs, read-only root holds, no setuid/setgid file", "failed",
                      tool="docker run + /proc/1/status",
                      command="docker run -d " + " ".join(SETTINGS) + f" {image}; docker exec <c> python3 -c <probe>")
    started = time.monotonic()
    cid = docker("run", "-d", *labels, *SETTINGS, *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
                 image).stdout.strip()
    try:
        for _ in range(50):
            state = docker("inspect", "-f", "{{.State.Running}}", cid, check=False).stdout.strip()
            if state == "true":
                break
            time.sleep(0.2)
        time.sleep(1.0)     # PID 1 has exec'd the server (the entrypoint execs it)
        state = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", cid, check=False).stdout.split()
        if state[:1] != ["true"]:
            logs = docker("logs", "--tail", "30", cid, check=False)
            record.reason = (f"the container exited (code {state[1] if len(state) > 1 else '?'}) before it could be "
                             "probed with the security settings")
            record.log = (logs.stdout + logs.stderr)[-2000:]
            return record
        proc = docker("exec", cid, "python3", "-c", PROBE, check=False)
        if proc.returncode:
            record.reason, record.log = f"the probe failed (exit {proc.returncode})", proc.stderr[-2000:]
            return record
        data = json.loads(proc.stdout)
    finally:
        docker("rm", "-f", "-v", cid, check=False)
    record.duration_s = round(time.monotonic() - started, 3)
    return judge(record, data)


def judge(record: Evidence, data: dict) -> Evidence:
    problems = []
    if int(data["CapEff"] or "0", 16):
        problems.append(f"PID 1 has effective capabilities (CapEff {data['CapEff']})")
    if data["NoNewPrivs"] != "1":
        problems.append(f"NoNewPrivs is {data['NoNewPrivs'] or 'missing'} (no-new-privileges not in effect)")
    written = [p for p, r in data["writes"].items() if r == "written"]
    if written:
        problems.append(f"the root filesystem took a write: {', '.join(written)}")
    if data["suid"]:
        problems.append(f"setuid/setgid files: {', '.join(data['suid'][:10])}")
    if data["Uid"] and data["Uid"][0] == "0":
        problems.append("PID 1 runs as root")
    record.status = "failed" if problems else "passed"
    record.reason = "; ".join(problems)
    record.figures = {"pid1": data["Name"], "uid": (data["Uid"] or [""])[0], "CapEff": data["CapEff"],
                      "CapPrm": data["CapPrm"], "CapBnd": data["CapBnd"], "NoNewPrivs": data["NoNewPrivs"],
                      "setuid_setgid": data["suid"], "shells": data["shells"],
                      "package_managers": data["package_managers"], "write_attempts": data["writes"]}
    return record
