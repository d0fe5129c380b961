"""w2v2.data"""
