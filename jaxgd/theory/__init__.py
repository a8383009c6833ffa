"""Theory with closed forms: the least-squares optimum, the exact trajectory of plain gradient
descent, stability limits and Adam's sharpness.
"""
