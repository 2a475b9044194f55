"""Every Python block of docs/extending.md runs as written, in order."""

import re
from pathlib import Path

DOC = Path(__file__).parents[1] / "docs" / "extending.md"


def test_the_extending_page_runs(capsys):
    from l2o.rules import LEARNED
    from l2o.tasks import registry

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    finally:
        LEARNED.pop("normalized", None)
        registry._FAMILIES.pop("rosenbrock", None)
    out = capsys.readouterr().out
    printed = re.findall(r"It prints `(.*?)`", DOC.read_text())  # what the page says each block prints
    assert printed
    number = r"-?\d+(?:\.\d+)?"
    for line in printed:  # the same words; the same numbers to 2 % (another machine's rounding)
        words = re.sub(number, "#", line)
        got = [o for o in out.splitlines() if re.sub(number, "#", o) == words]
        assert got, (line, out)
        expected, actual = map(float, re.findall(number, line)), map(float, re.findall(number, got[0]))
        assert all(abs(a - e) <= 0.02 * abs(e) for e, a in zip(expected, actual)), (line, got[0])
    assert "matrices vectors" in out
