"""Where a model was trained, in words: the ``hardware`` of its model card."""

import os

__all__ = ["machine_description"]


def machine_description():
    """A short description of where the training ran, for model cards.

    Returns
    -------
    description : str
        CPU model, core count, accelerators seen by the Keras backend,
        Keras version and backend.

    Examples
    --------
    >>> from fersk.training import machine_description
    >>> "Keras" in machine_description()
    True
    """
    import platform

    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    devices = "CPU only"
    if keras.backend.backend() == "jax":
        import jax

        devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = f"{len(gpus)} GPU" if gpus else "CPU only"
    return (
        f"{cpu}, {os.cpu_count()} cores, {devices}, Keras {keras.__version__} "
        f"({keras.backend.backend()})"
    )
