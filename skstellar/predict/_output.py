"""An ECSV table grown chunk by chunk, with a checkpoint that makes the run resumable.

The rows of each chunk are appended to ``<output>.ecsv`` as text and synced to disk; then
the checkpoint ``<output>.ecsv.progress.json`` (replaced atomically) records the chunks
done and the file's length after them. After an interruption, at any instant, the table is
cut back to the length of the last checkpoint (dropping a chunk half written) and the run
continues with the next chunk. Text appends survive a kill; an HDF5 file being written
when its process is killed may be left unreadable, which is why the output is not HDF5.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

__all__ = ["ChunkedTable"]


class ChunkedTable:
    """The output file and its checkpoint.

    Parameters
    ----------
    path : path-like
        The ``.ecsv`` file.
    plan : dict
        What the rows depend on (source, chunk size, filter block, pipeline): a resumed run
        must have the same plan, or its rows would not continue the file's.
    resume : bool
        Continue a file whose checkpoint has the same plan; False starts afresh.
    """

    def __init__(self, path, plan, *, resume=True, overwrite=False):
        self.path = Path(path)
        if self.path.suffix.lower() != ".ecsv":
            raise ValueError(
                f"{self.path}: streaming prediction writes ECSV (a text table grown chunk by chunk and "
                "cut back safely after an interruption); name the output *.ecsv and convert it at the end "
                "with skstellar.io.write_predictions if another format is needed."
            )
        self.checkpoint = self.path.with_name(self.path.name + ".progress.json")
        self.plan = plan
        state = None
        if self.checkpoint.exists() and resume:
            state = json.loads(self.checkpoint.read_text())
            if state["plan"] != plan:
                changed = sorted(k for k in set(plan) | set(state["plan"]) if plan.get(k) != state["plan"].get(k))
                raise ValueError(
                    f"{self.path}: cannot resume, the run differs from the interrupted one in {changed} "
                    f"(was {[state['plan'].get(k) for k in changed]}, now {[plan.get(k) for k in changed]}). "
                    "Rerun with the same settings, or pass resume=False to start again."
                )
            if not self.path.exists():
                raise ValueError(f"{self.path}: the checkpoint {self.checkpoint} exists but the table does not.")
        elif self.path.exists() and not (overwrite or (not resume and self.checkpoint.exists())):
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it.")
        if state is None:
            state = {"plan": plan, "done": 0, "rows": 0, "bytes": 0, "complete": False, "runs": []}
            self.path.write_bytes(b"")
        else:
            with open(self.path, "r+b") as fh:  # drop what a killed run wrote after its last checkpoint
                fh.truncate(state["bytes"])
        state["runs"].append([])
        self.state = state
        self._save()

    @property
    def done(self) -> int:
        """Chunks already in the table (they are not computed again)."""
        return self.state["done"]

    @property
    def rows(self) -> int:
        return self.state["rows"]

    def append(self, chunk, table):
        """Append the rows of chunk number ``chunk`` (which must be the next one)."""
        if chunk != self.state["done"]:
            raise RuntimeError(
                f"chunk {chunk} written out of order; the table holds chunks 0-{self.state['done'] - 1}."
            )
        text = io.StringIO()
        table.write(text, format="ascii.ecsv")
        text = text.getvalue()
        if self.state["bytes"]:  # the header is already there: keep the data lines only
            lines = text.splitlines(keepends=True)
            first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
            text = "".join(lines[first + 1:])  # past the column-name line
        with open(self.path, "ab") as fh:
            fh.write(text.encode())
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
        self.state["done"] += 1
        self.state["rows"] += len(table)
        self.state["bytes"] = size
        self.state["runs"][-1].append(chunk)
        self._save()

    def finish(self):
        self.state["complete"] = True
        self._save()

    def _save(self):
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.checkpoint)
