"""What the 50_iac notebook shows: the Terraform read back from the generated files (what is
planned, its inputs and its outputs)."""
from __future__ import annotations


def terraform_rows(files: dict[str, str]) -> dict[str, list[dict]]:
    """The Terraform inventory as tables: what is planned (resources, modules), its inputs, its outputs."""
    from kit.families.iac.terraform import inventory
    inv = inventory(files)
    strip = len("terraform/")
    planned = [{"folder": b["folder"][strip:], "kind": b["kind"], "type": b["type"], "name": b["name"],
                "source": f"{b.get('source', '')} {b.get('version', '')}".strip() or "-",
                "inputs": ", ".join(b["inputs"][:8]) + (" ..." if len(b["inputs"]) > 8 else "")}
               for b in inv.blocks]
    inputs = [{"folder": v["folder"][strip:], "variable": v["name"], "type": v["type"],
               "default": "(required)" if v["default"] is None else str(v["default"]),
               "validated": "yes" if v["validation"] else "-", "description": v["description"]}
              for v in inv.variables]
    outputs = [{"folder": o["folder"][strip:], "output": o["name"], "description": o["description"]}
               for o in inv.outputs]
    return {"planned": planned, "inputs": inputs, "outputs": outputs}
