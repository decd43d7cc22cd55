"""kfactor's benchmark suite: `python -m benchmarks.run` (see `run.py`).

The coordinator (`run.py`) imports neither TensorFlow nor PyTorch: it starts
worker processes (`worker_tf.py`, `worker_torch.py`), each with its own
environment (oneDNN, malloc settings), and asks them for timed windows in
interleaved rounds over a line-based JSON protocol (`protocol.py`).
"""
