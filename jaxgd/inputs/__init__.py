"""Input at the library's boundary: checks that say what is wrong and where, and tables whose
column names travel with the numbers.
"""
