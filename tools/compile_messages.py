"""Compile the message catalogues: qa_pipeline/locale/*/LC_MESSAGES/qa_pipeline.po → .mo (Babel).

    .venv/bin/python tools/compile_messages.py          # rebuild every .mo
    .venv/bin/python tools/compile_messages.py --check  # exit 1 if a .mo is out of date

The .mo files are committed (the package ships them; a clean install needs no Babel).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "qa_pipeline" / "locale"


def compiled(po: Path) -> bytes:
    with open(po, "rb") as f:
        catalog = read_po(f)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def same_messages(po: Path, mo: Path) -> bool:
    """The .mo holds exactly the .po's translations (headers aside: they name the Babel version)."""
    with open(po, "rb") as f:
        want = {m.id: m.string for m in read_po(f) if m.id}
    with open(mo, "rb") as f:
        have = {m.id: m.string for m in read_mo(f) if m.id}
    return want == have


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if args.check:
            if not mo.is_file() or not same_messages(po, mo):
                stale.append(mo)
        else:
            mo.write_bytes(compiled(po))
            print(f"wrote {mo.relative_to(ROOT)}")
    for mo in stale:
        print(f"out of date: {mo.relative_to(ROOT)} (run tools/compile_messages.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
