"""Numba's disk cache is checked against every source a kernel was compiled from, and is never a fault
(NOTE [kernel cache] in microdl._cache): an edited formula is picked up with a warm cache; a full disk, a
read-only install with a read-only home, and damaged cache files each fall back to compiling in memory, say so
once, and the model still trains.

Each case runs in a fresh process (the cache is read when a kernel is first compiled in a process), on a copy of
the package where the test edits a file. The cases that edit nothing share one copy, its untouched results and
its warm cache (the ``pristine`` fixture).
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import microdl

PACKAGE = Path(microdl.__file__).parent

# A model's loss and gradient, and its outputs: compiles the block kernel only (cheap), prints the loss, the
# kernel's cache hits, and every CacheWarning (one line each).
TRAIN = """
import warnings
import numpy as np
warnings.simplefilter("always")
from microdl.nn import MLP, _cpu
net = MLP((3, 4, 2), activation="relu", random_state=0)
for b in net.biases:
    b[...] = 0.5                        # every hidden unit active: relu's formula shows in the outputs
X = np.random.default_rng(0).uniform(size=(5, 3))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    loss = net.loss_and_grad(X, np.array([0, 1, 1, 0, 1]))
    out = net.forward(X)
from microdl._cache import CacheWarning
for w in caught:
    if issubclass(w.category, CacheWarning):
        print("WARNING", str(w.message).replace("\\n", " "))
print("LOSS", repr(float(loss)), repr(float(out[0, 0])))
print("HITS", sum(_cpu._block.stats.cache_hits.values()))
"""


# The optimizers' kernels too: Adam's step (parallel and serial builds) and gradient clipping, on a buffer large
# enough for the threaded build; prints in TRAIN's format (HITS: Adam's kernels' cache hits).
STEP = """
import warnings
import numpy as np
from microdl.optim import Adam, clip_grad_norm
from microdl.optim import _cpu
theta = np.linspace(-1.0, 1.0, 300_000)
g = np.cos(theta)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    opt = Adam(theta, lr=0.1)
    for _ in range(3):
        opt.step(g)
    norm = clip_grad_norm(g.copy(), 1.0)
from microdl._cache import CacheWarning
for w in caught:
    if issubclass(w.category, CacheWarning):
        print("WARNING", str(w.message).replace("\\n", " "))
kernels = _cpu.kernels_for(Adam)
print("LOSS", repr(float(theta.sum())), repr(float(norm)))
print("HITS", sum(k.stats.cache_hits.get(sig, 0) for k in (kernels.parallel, kernels.serial) for sig in k.signatures))
"""


def _copy_package(tmp_path):
    root = tmp_path / "src"
    shutil.copytree(PACKAGE, root / "microdl", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _output(root, code, cache_dir=None, prelude="", env_extra=None):
    """The lines that ``code`` prints in a fresh process on the package copy at ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(prelude) + code], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def _numbers(lines, label="LOSS"):
    return tuple(float(v) for v in [line for line in lines if line.startswith(label)][-1].split()[1:])


def _run(root, code, cache_dir=None, prelude="", env_extra=None):
    """What TRAIN or STEP printed: (the numbers, the cache hits, the CacheWarnings)."""
    lines = _output(root, code, cache_dir, prelude, env_extra)
    hits = int([line for line in lines if line.startswith("HITS")][-1].split()[1])
    warnings_ = [line for line in lines if line.startswith("WARNING")]
    return _numbers(lines), hits, warnings_


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A copy of the package that no test edits, a cache filled by a first run of TRAIN on it, and that run's
    results (the numbers every case that edits nothing must reproduce)."""
    tmp_path = tmp_path_factory.mktemp("pristine")
    root, cache = _copy_package(tmp_path), tmp_path / "cache"
    loss, hits, warned = _run(root, TRAIN, cache)
    assert hits == 0 and not warned and list(cache.rglob("*.nbi"))
    return root, cache, loss


def test_an_edited_formula_is_picked_up_with_a_warm_cache(tmp_path):
    """Issue 19 item 5 / issue 21 case 3: the kernel file is untouched; only activations.py changes."""
    root, cache = _copy_package(tmp_path), tmp_path / "cache"
    first, hits, _ = _run(root, TRAIN, cache)
    assert hits == 0
    again, hits, _ = _run(root, TRAIN, cache)
    assert again == first and hits > 0  # the warm cache is used while nothing changed

    activations = root / "microdl" / "nn" / "activations.py"
    source = activations.read_text()
    old = "def relu(z, p):\n    return 0.0 if z < 0 else z\n"
    assert old in source
    # (its array form too, which the NumPy pass uses: registration refuses a pair that disagrees)
    old_array = "def relu_array(z, p):\n    return np.maximum(z, 0.0)"
    assert old_array in source
    activations.write_text(source.replace(old, "def relu(z, p):\n    return 0.0 if z < 0 else 2.0 * z\n")
                           .replace(old_array, "def relu_array(z, p):\n    return 2.0 * np.maximum(z, 0.0)"))
    # the same process then runs the readable code (backend="numpy"), which prints REFERENCE and REFHITS instead
    readable = (TRAIN.replace('activation="relu"', 'activation="relu", backend="numpy"')
                .replace('print("LOSS"', 'print("REFERENCE"').replace('print("HITS"', 'print("REFHITS"'))
    lines = _output(root, TRAIN + readable, cache)
    edited, hits = _numbers(lines), int([line for line in lines if line.startswith("HITS")][-1].split()[1])
    assert hits == 0  # a cache written before the edit is not used
    assert edited != first
    reference = _numbers(lines, "REFERENCE")
    assert edited == pytest.approx(reference, rel=1e-12)  # the new formula, as the readable code computes it


def test_a_full_disk_compiles_in_memory_and_says_so_once(tmp_path, pristine):
    """Issue 21 case 4: every write to the cache directory fails with ENOSPC."""
    root, _, expected = pristine
    cache = tmp_path / "cache"
    prelude = f"""
    import builtins, errno
    _open = builtins.open
    def _full(file, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax+") and str(file).startswith({str(cache)!r}):
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return _open(file, mode, *args, **kwargs)
    builtins.open = _full
    """
    got, hits, warned = _run(root, TRAIN, cache, prelude)
    assert got == expected and hits == 0
    assert len(warned) == 1, warned
    assert str(cache) in warned[0] and "writing the cache failed" in warned[0] and "No space left" in warned[0]


def test_a_read_only_install_and_home_compile_in_memory(tmp_path, pristine):
    """Issue 21 case 5: no NUMBA_CACHE_DIR, and neither the package's folder nor the home is writable (as
    root, which may write anywhere, the read-only file system is simulated where Numba probes it)."""
    root = _copy_package(tmp_path)
    prelude = """
    import errno, os, tempfile
    def _read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))
    tempfile.TemporaryFile = _read_only      # Numba's probe of a cache directory
    _makedirs = os.makedirs
    def _makedirs_ro(path, *args, **kwargs):
        if not os.path.isdir(path):
            raise OSError(errno.EROFS, "Read-only file system", path)
    os.makedirs = _makedirs_ro
    """
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o555)
    os.chmod(root / "microdl", 0o555)
    try:
        got, hits, warned = _run(root, TRAIN, None, prelude, {"HOME": str(home)})
    finally:
        os.chmod(root / "microdl", 0o755)
    assert hits == 0 and not any((root / "microdl").rglob("*.nbi"))
    assert len(warned) == 1 and "finding a writable directory failed" in warned[0], warned
    assert got == pristine[2]
    # the optimizers' kernels too: `import microdl.optim` raised "no locator available" with plain cache=True
    try:
        os.chmod(root / "microdl", 0o555)
        got, hits, warned = _run(root, STEP, None, prelude, {"HOME": str(home)})
    finally:
        os.chmod(root / "microdl", 0o755)
    assert hits == 0 and len(warned) == 1 and "finding a writable directory failed" in warned[0], warned
    assert got == _run(root, STEP, tmp_path / "cache")[0]


@pytest.mark.parametrize("damaged", ["nbi", "nbc"])
def test_damaged_cache_files_are_recompiled_and_repaired(tmp_path, damaged, pristine):
    """Issue 21 case 6: a truncated or overwritten .nbi/.nbc file."""
    root, warm, expected = pristine
    cache = shutil.copytree(warm, tmp_path / "cache")
    files = list(cache.rglob(f"*.{damaged}"))
    assert files
    for f in files:
        f.write_bytes(b"\x80\x05 not a pickle" + f.read_bytes()[:7])
    got, hits, warned = _run(root, TRAIN, cache)
    assert got == expected and hits == 0
    assert len(warned) == 1 and "reading the cache failed" in warned[0] and str(cache) in warned[0], warned
    repaired, hits, warned = _run(root, TRAIN, cache)  # the next save wrote good entries
    assert repaired == expected and hits > 0 and not warned


def test_every_microdl_kernel_with_a_disk_cache_uses_the_checked_cache():
    """A kernel declared with ``numba.njit(cache=True)`` would trust its own file only (NOTE [kernel cache])."""
    from numba.core.dispatcher import Dispatcher

    import microdl.nn._cpu
    import microdl.optim._cpu
    import microdl.optim.clip
    from microdl._cache import CheckedCache

    plain = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("microdl"):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, Dispatcher) and value._cache.__class__.__name__ == "FunctionCache":
                plain.append(f"{name}.{attr}")
    assert not plain, plain
    assert isinstance(microdl.nn._cpu._block._cache, CheckedCache)
