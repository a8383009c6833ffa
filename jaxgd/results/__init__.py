"""What runs return, and how results are saved, loaded and shown as tables.
"""
