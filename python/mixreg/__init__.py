"""mixreg from Python.

mixreg.torch (needs PyTorch): the PyTorch module of every mixreg architecture,
with the parameter and buffer names mixreg writes to model.safetensors, and
`from_run(RUN_DIR)` to continue a run's life in PyTorch.
"""
__version__ = "0.1.0"
