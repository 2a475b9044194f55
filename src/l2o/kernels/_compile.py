"""Run by ``l2o.kernels.build`` as a child process (a script, so that it imports neither l2o nor anything
else the parent has): compile one kernel into a private folder with ``torch.utils.cpp_extension`` and import
it once, as a check. Exit 0 on success.

    python _compile.py OUT_DIR NAME SOURCE FLAGS_JSON LDFLAGS_JSON PARENT_PID

The child runs in its own session, so that the parent can stop the whole compiler tree on a timeout; and it
stops that tree itself as soon as its parent is gone, so that a killed parent leaves no compiler behind.
"""

import json
import os
import signal
import sys
import threading
import time


def _stop_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(0.2)


def main() -> None:
    out_dir, name, source, flags, ldflags, parent = sys.argv[1:7]
    threading.Thread(target=_stop_with_parent, args=(int(parent),), daemon=True).start()
    from torch.utils.cpp_extension import load

    load(name=name, sources=[source], extra_cflags=json.loads(flags), extra_ldflags=json.loads(ldflags),
         build_directory=out_dir, verbose=False)


if __name__ == "__main__":
    main()
