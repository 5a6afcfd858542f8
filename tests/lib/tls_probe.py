"""TLS probes for the Molecule scenarios: served certificates, sslyze, re-converges, test PKI."""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import playbook_run

ROOT = Path(__file__).resolve().parents[2]


def served_leaf(port: int, sni: str, address: str = "127.0.0.1") -> x509.Certificate:
    """The leaf certificate a TLS server presents for `sni` (no verification: we inspect it)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def served_chain_in_host(host, sni: str, port: int = 443) -> list[x509.Certificate]:
    """The whole chain nginx sends, read with openssl s_client inside the test host."""
    out = host.check_output(
        f"openssl s_client -connect 127.0.0.1:{port} -servername {sni} -showcerts </dev/null 2>/dev/null")
    pems, current = [], []
    for line in out.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END CERTIFICATE-----"):
                pems.append("\n".join(current) + "\n")
                current = []
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else name.rfc4514_string()


@dataclass
class SslyzeVerdict:
    returncode: int
    compliant: bool
    output: str

    @property
    def summary(self) -> str:
        lines = [ln.strip() for ln in self.output.splitlines() if "ompliant" in ln or ln.strip().startswith("* ")]
        return " | ".join(lines[-4:]) or self.output.strip().splitlines()[-1]


def sslyze(profile: str, port: int, sni: str, ca_file: str, address: str = "127.0.0.1") -> SslyzeVerdict:
    """sslyze --mozilla_config=<profile> against address:port with SNI; exit 0 means compliant."""
    exe = ROOT / ".venv" / "bin" / "sslyze"
    cmd = [str(exe if exe.exists() else "sslyze"), f"--mozilla_config={profile}",
           f"--certinfo_ca_file={ca_file}", f"{sni}:{port}{{{address}}}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return SslyzeVerdict(proc.returncode, proc.returncode == 0, proc.stdout + proc.stderr)


def write_temp(text: str, suffix: str = ".pem") -> str:
    tmp = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    tmp.write(text)
    tmp.close()
    return tmp.name


def converge(*, playbook: str | Path | None = None, extra_vars: dict | None = None, tags: str | None = None,
             timeout: int = 600) -> subprocess.CompletedProcess:
    """Run playbooks/site.yml (or `playbook`) on the scenario host. Extra vars go through a 0600 file, not argv."""
    cmd = ["ansible-playbook", "-i", playbook_run.inventory(), str(playbook or ROOT / "playbooks" / "site.yml")]
    vars_file = None
    if extra_vars:
        fd, vars_file = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(extra_vars, fh)
        cmd += ["-e", f"@{vars_file}"]
    if tags:
        cmd += ["--tags", tags]
    try:
        return subprocess.run(cmd, env=playbook_run.ansible_env(), capture_output=True, text=True, check=False,
                              timeout=timeout, cwd=ROOT)
    finally:
        if vars_file:
            os.unlink(vars_file)


@dataclass
class TestPki:
    ca_pem: str
    cert_pem: str
    key_pem: str
    other_key_pem: str
    serial: int


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_test_pki(name: str, days: int = 60) -> TestPki:
    """An ECDSA CA and an ECDSA-signed leaf for `name` (what the modern profile asks for)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpsec test provided CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    other = ec.generate_private_key(ec.SECP256R1())
    return TestPki(ca_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
                   cert_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
                   key_pem=_key_pem(key), other_key_pem=_key_pem(other), serial=leaf.serial_number)
