"""Data as the loop sees it: sufficient statistics, standardizing, host-side memos and rows
streamed from files.
"""
