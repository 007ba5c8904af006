"""How each family was proven, in words a person on call can trust: real run, stand-in run (and
which stand-in), emulated (and what the emulation leaves out), or static checks only. Built from
the evidence records' `proof` levels; a summary never rounds one level up to another."""
from __future__ import annotations

from dataclasses import dataclass

from kit.evidence import Evidence, summarize
from kit.families import families


@dataclass(frozen=True)
class FamilyProof:
    name: str
    title: str
    counts: dict[str, int]
    levels: tuple[str, ...]            # the proof levels of the records that ran, strongest first
    standins: dict[str, str]
    leaves_out: str

    @property
    def static_only(self) -> bool:
        return self.levels == ("static",)

    def sentence(self) -> str:
        """e.g. "stand-in run (`kit-standin/postgres:15` for `postgres:15-bookworm`), and static checks"."""
        parts = []
        for level in self.levels:
            if level == "real":
                parts.append("real run")
            elif level == "stand-in":
                used = ", ".join(f"`{local}` for `{real}`" for real, local in sorted(self.standins.items()))
                parts.append(f"stand-in run ({used})" if used else "stand-in run")
            elif level == "emulated":
                parts.append(f"emulated ({self.leaves_out})" if self.leaves_out else "emulated")
            elif level == "static" and len(self.levels) > 1:
                parts.append("static checks")
        if not parts:
            return "static checks only: nothing here ran it" if self.static_only else "not run"
        return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


ORDER = ("real", "stand-in", "emulated", "static")


def family_proofs(records: list[Evidence]) -> list[FamilyProof]:
    out = []
    for name, family in families().items():
        own = [r for r in records if r.check.split(".")[0] == name]
        if not own:
            continue
        ran = {r.proof for r in own if r.status != "skipped" and r.proof}
        standins = {k: v for r in own if r.proof == "stand-in" for k, v in r.standins.items()}
        out.append(FamilyProof(name, family.title, summarize(own), tuple(p for p in ORDER if p in ran),
                               standins, family.emulation_leaves_out))
    return out


def proof_line(proof: FamilyProof) -> str:
    c = proof.counts
    return (f"- **{proof.title}**: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped; "
            f"{proof.sentence()}.")


def by_level(proofs: list[FamilyProof]) -> str:
    """One line for the Write Zone: which families ran for real, on stand-ins, emulated, static only."""
    groups: dict[str, list[str]] = {}
    for p in proofs:
        key = "static only" if p.static_only else (p.levels[0] if p.levels else "not run")
        groups.setdefault(key, []).append(p.name)
    labels = {"real": "real runs", "stand-in": "stand-in runs", "emulated": "emulated", "static only": "static only",
              "not run": "not run"}
    order = ("real", "stand-in", "emulated", "static only", "not run")
    return "; ".join(f"{labels[k]}: {', '.join(groups[k])}" for k in order if k in groups)
