"""w2v2.train"""
