"""`suf certs --out DIR`: a self-signed CA and one certificate + private key per party, for trying
the TLS channel out (`suf serve --cert --key --peer-ca`, `suf run --certs DIR`).  The CA's own
key is not kept.  For a deployment, each party makes its key on its own machine."""
from __future__ import annotations

from suf.cli.options import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("certs", help="test TLS certificates: a CA and one cert + key per party",
                       description=__doc__)
    p.add_argument("--out", required=True, help="the directory to write them to (made if absent)")
    p.add_argument("--days", type=positive_int, default=365, help="validity in days")
    p.set_defaults(run=run)


def run(args) -> int:
    from suf.runtime.certs import make_certs

    files = make_certs(args.out, args.days)
    d = files["ca.pem"].parent
    print(f"wrote {', '.join(sorted(files))} to {d}")
    for p in (0, 1):
        print(f"P{p}: --cert {d / f'p{p}.pem'} --key {d / f'p{p}.key'} --peer-ca {d / 'ca.pem'}")
    return 0
