"""headcount"""
