"""Seeing inside: traces of every gate and state (:mod:`~lstmkit.analysis.trace`), gradient
flow through them (:mod:`~lstmkit.analysis.gradient_flow`), plots
(:mod:`~lstmkit.analysis.plots`) and the explain page (:mod:`~lstmkit.analysis.explain`).

The functions are public as ``lstmkit.trace``, ``lstmkit.gradient_flow``, ... This package
re-exports none of them, so that ``lstmkit.analysis.trace`` stays the module, not the function
of the same name.
"""
