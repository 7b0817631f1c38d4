"""Real processes for tests and benchmarks: a tuskd server, a moto S3 endpoint, GCS and Azure
Blob Storage emulators, a Ray cluster.

Nothing in tusk imports this package; the test suite and ``bench/`` do, so that they start, wait
for and stop servers one way. ``tusk.testing.moto`` needs ``tusk[s3]`` and ``tusk.testing.ray``
needs ``tusk[ray]``, ``tusk.testing.emulators`` the ``dev``, ``gcs`` and ``azure`` extras and Azurite
(``scripts/setup-emulators.sh``); they are imported only by the code that uses them.
"""

from tusk.testing.process import clean_env, free_port, log_tail, stop_process, wait_for
from tusk.testing.tuskd import Tuskd

__all__ = ["Tuskd", "clean_env", "free_port", "log_tail", "stop_process", "wait_for"]
