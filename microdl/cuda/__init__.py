"""The CUDA device for :class:`microdl.nn.MLP`: the whole training step on the GPU, as Numba CUDA kernels.

* :mod:`microdl.cuda.kernels` — the kernels: tiled matrix multiplies, bias and activation, the output and loss
  pairs, reductions and the mini-batch gather;
* :mod:`microdl.cuda.model` — :class:`~microdl.cuda.model.DeviceNet`, which keeps a model's parameters,
  gradients and batch buffers on the device and runs forward and backward there;
* :mod:`microdl.cuda.batches` — :class:`~microdl.cuda.batches.DeviceBatches`, what :func:`microdl.train.fit`'s
  one loop needs from the GPU: the data kept there and one host synchronisation per epoch.

Nothing here is imported until a model asks for ``device="cuda"``; then
:func:`microdl._cuda_support.require_cuda` checks that the ``numba-cuda`` package, a driver and a device (or
Numba's simulator, ``NUMBA_ENABLE_CUDASIM=1``) are there, and raises
:class:`~microdl._cuda_support.CudaUnavailableError` naming what is missing.
"""
