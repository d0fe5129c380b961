"""w2v2.interop"""
