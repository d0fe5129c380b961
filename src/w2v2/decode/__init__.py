"""w2v2.decode"""
