"""ml_headcount"""
