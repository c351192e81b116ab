"""Load TensorFlow without its C++ start-up chatter on a command-line user's terminal.

TensorFlow 2.21 logs "Could not find cuda drivers", oneDNN notes and absl's "log messages
before InitializeLog" to the stderr file descriptor from C++, before (and regardless of)
``TF_CPP_MIN_LOG_LEVEL``. The commands load it once with that descriptor pointed at
/dev/null; Python exceptions are unaffected (they are raised after it is restored).
"""

import contextlib
import os

__all__ = ["load_tensorflow_quietly"]


@contextlib.contextmanager
def _stderr_fd_silenced():
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_tensorflow_quietly():
    """Import TensorFlow and let it probe its devices with C++ logging silenced.

    Does nothing when the user asked for TensorFlow's logs (``TF_CPP_MIN_LOG_LEVEL=0``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        return
    with _stderr_fd_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
