"""What every benchmark does with its table: print it and keep it in bench/results."""

from pathlib import Path
from typing import Union


def publish(table: str, out: Union[str, Path]) -> None:
    """Print ``table`` (markdown) and write it to ``out``, creating its folder."""
    print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table.rstrip("\n") + "\n")
