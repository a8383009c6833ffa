"""Engines: how each step's loss is computed (direct from the rows, from the Gram moments, in the
eigenbasis, or fused in one Pallas kernel), how the loop holds the parameters, and the one rule
that chooses.
"""
