"""Serve the synthetic batches through the test fakes, in a process of their own.

Started by ``bench/run.py``; not meant to be run by hand. Reads a JSON spec from argv,
serves every batch it names with ``tests.fakes`` (``TwelveLabsFake``, ``NomadicFake``
on ``FakeServer``: real HTTP on 127.0.0.1), prints one JSON line with the base URLs,
then serves until its standard input closes (the parent exits or closes the pipe).

Why a process of its own: the fakes build and serialize every answer in Python. In
the measured process they would share its GIL (slowing the client down) and its memory
(counting the server's copy of the batch as the client's peak).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository, not bench/

from bench import django_env  # noqa: E402

django_env.setup()

from bench import synthetic  # noqa: E402
from tests.fakes.nomadicml import NomadicFake  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402
from tests.fakes.twelvelabs import PREFIX, TwelveLabsFake  # noqa: E402


def main() -> None:
    spec = json.loads(sys.argv[1])
    started = time.perf_counter()
    tl_app, nm_app = TwelveLabsFake(spec["twelvelabs_key"]), NomadicFake(spec["nomadicml_key"])
    for batch in spec["twelvelabs"]:
        lines = synthetic.twelvelabs_lines(batch["items"], batch["per_item"], seed=batch["seed"])
        for batch_id in batch["ids"]:  # the same lines under several ids: one first sync each
            tl_app.add_batch(batch_id, lines)
    for batch in spec["nomadicml"]:
        videos = synthetic.nomadic_videos(batch["items"], batch["per_item"], seed=batch["seed"])
        for batch_id in batch["ids"]:
            nm_app.add_batch(batch_id, videos, metadata={"site": "bench", "fleet": "sf-3"})
    with FakeServer(tl_app) as tl_server, FakeServer(nm_app) as nm_server:
        ready = {
            "twelvelabs": tl_server.url + PREFIX,
            "nomadicml": nm_server.url,
            "generated_seconds": round(time.perf_counter() - started, 2),
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # returns at EOF: the parent is done (or gone)


if __name__ == "__main__":
    main()
