"""Stage backends: ``eager`` (torch, optional compile/autocast) and ``tensorrt`` (torch-tensorrt).

A *stage* is one network (backbone, root V2V, pose V2V) wrapped as ``tensor -> float32 tensor``.
Heavy imports happen inside the backend modules only when a stage is built.
"""
