"""What the 65_security notebook shows: the SBOM's composition, the admission matrix, the secret
scan summary, the hardening table and the threat model (views only, no checks)."""
from __future__ import annotations

from kit.evidence import Evidence


def _record(records: list[Evidence], check: str) -> Evidence | None:
    return next((r for r in records if r.check == check), None)


def sbom_counts(records: list[Evidence]) -> dict[str, int]:
    sbom = _record(records, "security.sbom")
    return dict((sbom.figures.get("by_type") or {}) if sbom else {})


def sbom_chart(counts: dict[str, int]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 2.5))
    names = list(counts)
    ax.barh(names, [counts[n] for n in names], color="#1565c0")
    for i, n in enumerate(names):
        ax.annotate(str(counts[n]), (counts[n], i), xytext=(3, -3), textcoords="offset points", fontsize=8)
    ax.set_xlabel("components in the SBOM")
    ax.set_title("SBOM composition by package type (syft, CycloneDX)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def admission_rows(records: list[Evidence]) -> list[dict]:
    """manifest x policy -> admitted or the denial message, for the overlays and the mutations."""
    rows = []
    for check, label in (("security.admission.overlays", "generated"), ("security.admission.mutations", "mutation")):
        record = _record(records, check)
        expected = (record.figures.get("expected") or {}) if record else {}
        for manifest, row in ((record.figures.get("matrix") or {}) if record else {}).items():
            for policy, verdict in row.items():
                if label == "generated" or verdict != "admitted" or expected.get(manifest) == policy:
                    rows.append({"manifest": f"{label}: {manifest}", "policy": policy,
                                 "verdict": "admitted" if verdict == "admitted" else "denied",
                                 "message": "" if verdict == "admitted" else verdict})
    return rows


def admission_grid(records: list[Evidence]) -> list[dict]:
    """One row per manifest, one column per policy: A (admitted) or D (denied)."""
    rows = []
    for check in ("security.admission.overlays", "security.admission.mutations"):
        record = _record(records, check)
        for manifest, row in ((record.figures.get("matrix") or {}) if record else {}).items():
            rows.append({"manifest": manifest, **{p: ("admitted" if v == "admitted" else "DENIED") for p, v in row.items()}})
    return rows


def secret_rows(records: list[Evidence]) -> list[dict]:
    rows = []
    for check in ("security.secrets.files", "security.secrets.source", "security.secrets.site", "security.secrets.image"):
        r = _record(records, check)
        if r:
            rows.append({"scan": check, "status": r.status, "files scanned": r.figures.get("files_scanned", ""),
                         "findings": r.figures.get("findings", ""),
                         "allowlisted": len(r.figures.get("allowlisted") or []), "reason": r.reason})
    return rows


def allowlisted_rows(records: list[Evidence]) -> list[dict]:
    return [{"scan": r.check, **row} for r in records if r.check.startswith("security.secrets.")
            for row in r.figures.get("allowlisted") or []]


def hardening_rows(records: list[Evidence]) -> list[dict]:
    r = _record(records, "security.hardening")
    if not r or r.status == "skipped":
        return []
    f = r.figures
    writes = ", ".join(f"{p}: {v}" for p, v in (f.get("write_attempts") or {}).items())
    return [
        {"property": "effective capabilities of PID 1 (CapEff)", "measured": f.get("CapEff"),
         "verdict": "ok" if int(f.get("CapEff") or "0", 16) == 0 else "FAIL"},
        {"property": "bounding set (CapBnd)", "measured": f.get("CapBnd"), "verdict": "reported"},
        {"property": "NoNewPrivs", "measured": f.get("NoNewPrivs"), "verdict": "ok" if f.get("NoNewPrivs") == "1" else "FAIL"},
        {"property": "PID 1 and its UID", "measured": f"{f.get('pid1')} uid {f.get('uid')}",
         "verdict": "ok" if f.get("uid") != "0" else "FAIL"},
        {"property": "write to the root filesystem", "measured": writes,
         "verdict": "ok" if "written" not in writes else "FAIL"},
        {"property": "setuid/setgid files", "measured": ", ".join(f.get("setuid_setgid") or []) or "none",
         "verdict": "ok" if not f.get("setuid_setgid") else "FAIL"},
        {"property": "shells present", "measured": ", ".join(f.get("shells") or []) or "none", "verdict": "reported"},
        {"property": "package managers present", "measured": ", ".join(f.get("package_managers") or []) or "none",
         "verdict": "reported"},
        {"property": "OS packages (SBOM)", "measured": f.get("os_packages", ""), "verdict": "reported"},
    ]
