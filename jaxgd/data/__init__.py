"""Data as the loop sees it: sufficient statistics, standardizing, and host-side memos of
work on the data.
"""
