"""modal_workers"""
