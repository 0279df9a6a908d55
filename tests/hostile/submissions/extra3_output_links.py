# Replaces its saved outputs for Linear's dx by symbolic links to the grader's expected data,
# so that a judge that followed links would compare the expected data with itself.
# include: _hostile_helpers.py
import numpy

_real_save = numpy.save


def linking_save(file, arr, *args, **kwargs):
    name = os.path.basename(str(file))
    if name.startswith("c000_") and name.endswith("_dx.npy"):
        os.symlink(f"{SOURCE}/chapter/expected/{name}", str(file))
        return None
    return _real_save(file, arr, *args, **kwargs)


numpy.save = linking_save


class Linear(Linear):
    def backward(self, dupstream):
        return super().backward(dupstream) * 0
