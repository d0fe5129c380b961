"""w2v2.analysis"""
