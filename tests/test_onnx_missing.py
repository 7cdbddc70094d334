"""Without the ``onnx`` extra, ``microdl.onnx`` refuses to import with one line naming it."""

import subprocess
import sys


def test_import_without_the_extra_names_it():
    # sys.modules[name] = None makes `import name` fail as if the package were not installed
    code = ("import sys; sys.modules['skl2onnx'] = None\n"
            "try:\n    import microdl.onnx\nexcept ImportError as e:\n    print(e)\nelse:\n    print('imported')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "microdl.onnx needs the 'onnx' extra: pip install 'microdl[onnx]'"
