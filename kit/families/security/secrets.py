"""Secret scanning with detect-secrets (Yelp, PyPI, pinned in pyproject): the generated files, the
service's source, the site when one was built, and the built image (every layer's history and
config, every file the build added). detect-secrets was chosen because it installs from PyPI (the
only registry here besides Debian and npm), runs offline, scans files and strings alike, and
reports a finding's type and line without the value; gitleaks and trufflehog ship as Go binaries
from GitHub releases, which this machine cannot reach.

A finding is reported as file, line and detector type, never its value. The allowlist is narrow:
each entry names a detector and a regular expression the finding's whole line must match, with
the reason; allowlisted findings are still listed in the evidence."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1_000_000
# detect-secrets' detectors of token formats (a fixed prefix or structure): the ones run over the
# image's third-party files (OS packages, site-packages), where the keyword and entropy detectors
# only find test vectors and hashes, and the vendor keyword regexes (Cloudant, IBM, SoftLayer,
# Artifactory) take minutes
TOKEN_PLUGINS = ("AWSKeyDetector", "AzureStorageKeyDetector", "DiscordBotTokenDetector", "GitHubTokenDetector",
                 "GitLabTokenDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector", "OpenAIDetector",
                 "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
                 "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector", "TwilioKeyDetector")


@dataclass(frozen=True)
class Allow:
    detector: str
    line: str          # a regular expression the finding's line must match (fullmatch, stripped)
    reason: str
    where: str = ".*"  # a regular expression the finding's file must match (fullmatch)


ALLOWLIST = (
    Allow("Secret Keyword", r"-?\s*(secretName|secretKey):\s*[A-Za-z0-9_.-]+",
          "a Kubernetes reference to a Secret object or key by name (a name, not a value)"),
    Allow("Secret Keyword", r"-?\s*secret:\s*\{secretName:\s*[A-Za-z0-9_.-]+"
          r"(,\s*items:\s*\[\{key:\s*[A-Za-z0-9_.-]+,\s*path:\s*[A-Za-z0-9_.-]+\}\])?\}",
          "a secret volume referencing a Kubernetes Secret by name, in YAML flow style (a name, not a value)"),
    Allow("Secret Keyword", r"secrets:\s*inherit",
          "GitHub Actions' reusable-workflow keyword passing the caller's secrets by reference, no value"),
    Allow("Secret Keyword", r"printf '.*value: \"%s\".*",
          "the e2e workflow's printf format for ESO's fake store; the value is `openssl rand` at run time"),
    Allow("Secret Keyword", r"# the ClusterSecretStore [\w-]+: ESO's fake provider,.*",
          "prose in the e2e workflow's comment (a store's name followed by a colon), no value",
          r"\.github/workflows/e2e-kind\.yml"),
    Allow("Base64 High Entropy String", r"(-\s*)?key:\s*[a-z0-9][a-z0-9.-]*/[A-Za-z_][A-Za-z0-9_]*",
          "an ExternalSecret's remoteRef key: the secret's name in the cloud store (<service>/<NAME>), no value"),
    Allow("JSON Web Token", r".*", "PyJWT's package description (its README, in the wheel's METADATA) shows an "
          "example token",
          r"opt/venv/lib/python3\.\d+/site-packages/pyjwt-[\d.]+\.dist-info/METADATA"),
    Allow("Hex High Entropy String", r"[A-Z0-9_]*SHA256:\s*[0-9a-f]{64}",
          "a published SHA-256 checksum of a downloaded tool (kind, helm)"),
    Allow("Hex High Entropy String", r"thumbprint_list\s*=\s*\[(\s*\"[0-9a-f]{40}\",?)+\s*\]",
          "the public SHA-1 thumbprints of the CI OIDC provider's certificate chain"),
    Allow("Base64 High Entropy String",
          r'("integrity":\s*"|integrity\s+|resolution:\s*\{integrity:\s*|checksum:\s*)(sha(1|256|384|512)-)?'
          r'[A-Za-z0-9+/=]+"?,?\}?',
          "a package lockfile's integrity hash of a published tarball (Subresource Integrity), public by design",
          r"(.*/)?(package-lock\.json|\.package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml)"),
    Allow("AWS Access Key", r".*",
          "cjs-module-lexer's WebAssembly module, embedded as base64 in Debian's nodejs: an AKIA-like run of "
          "characters inside the blob, not a key", r"(.*/)?usr/share/nodejs/cjs-module-lexer/dist/lexer\.m?js"),
    Allow("Private Key", r".*",
          "npm's documentation of its `key` option, which quotes the PEM header, no key",
          r"(.*/)?(usr/share/nodejs|usr/local/lib/node_modules)/npm/lib/utils/config/definitions\.js"),
)


@dataclass(frozen=True)
class Finding:
    where: str         # file (or image:layer:path, image:history)
    line: int
    detector: str
    allowed_by: str = ""    # the allowlist reason, "" when it is a real finding

    def row(self) -> dict:
        return {"where": self.where, "line": self.line, "detector": self.detector,
                **({"allowlisted": self.allowed_by} if self.allowed_by else {})}


def _allowed(detector: str, text_line: str, where: str = "") -> str:
    for allow in ALLOWLIST:
        if allow.detector == detector and re.fullmatch(allow.line, text_line.strip()) \
                and re.fullmatch(allow.where, where):
            return allow.reason
    return ""


def _line_of(lines: list[str], number: int, value: str | None) -> str:
    """The line holding the value (detect-secrets reports a YAML block scalar at its key's line, and
    a value inside a flow mapping at a line its YAML transformer counted, which can lie past the end)."""
    if value:
        for row in lines[max(0, number - 1):] + lines[:max(0, number - 1)]:
            if value in row:
                return row
    return lines[number - 1] if 0 < number <= len(lines) else ""


def scan_text(text: str, where: str, suffix: str = ".txt") -> list[Finding]:
    """detect-secrets over one text (written to a temporary file named like the original, so its
    file-type-specific filters apply)."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="kit-secrets-") as tmp:
        path = Path(tmp) / f"scanned{suffix}"
        path.write_text(text)
        return [Finding(where, f.line, f.detector, f.allowed_by) for f in scan_paths([path], Path(tmp))]


def scan_paths(paths: list[Path], root: Path, plugins: list[dict] | None = None) -> list[Finding]:
    """detect-secrets over files; `where` is each path relative to `root`."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings, transient_settings
    found: list[Finding] = []
    collection = SecretsCollection()
    settings = transient_settings({"plugins_used": plugins}) if plugins else default_settings()
    with settings:
        for path in paths:
            collection.scan_file(str(path))
        for filename, secrets in collection.data.items():
            lines = Path(filename).read_text(errors="replace").splitlines()
            rel = str(Path(filename).relative_to(root)) if Path(filename).is_absolute() else filename
            for secret in sorted(secrets, key=lambda s: (s.line_number, s.type)):
                line = _line_of(lines, secret.line_number, secret.secret_value)
                found.append(Finding(rel, secret.line_number, secret.type, _allowed(secret.type, line, rel)))
    return sorted(found, key=lambda f: (f.where, f.line, f.detector))


def text_files(root: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """Regular text files under root (no symlinks, nothing over MAX_BYTES, no NUL in the first 8 KiB)."""
    out = []
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        if path.stat().st_size > MAX_BYTES:
            continue
        with path.open("rb") as fh:
            if b"\0" in fh.read(8192):
                continue
        out.append(path)
    return out


def token_prefilter() -> list[re.Pattern]:
    """The token detectors' own regular expressions (their `denylist`), to find the few files worth
    a full detect-secrets pass among thousands."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    classes = {c.__name__: c for c in get_mapping_from_secret_type_to_class().values()}
    return [rx for name in TOKEN_PLUGINS for rx in getattr(classes[name](), "denylist", ())]


def scan_tree_tokens(root: Path, skip: tuple[str, ...] = ()) -> tuple[int, list[Finding]]:
    """Token detectors over every text file under root: (files read, findings)."""
    patterns, hits = token_prefilter(), []
    files = text_files(root, skip)
    for path in files:
        text = path.read_text(errors="replace")
        if any(rx.search(text) for rx in patterns):
            hits.append(path)
    return len(files), scan_paths(hits, root, [{"name": n} for n in TOKEN_PLUGINS]) if hits else []
