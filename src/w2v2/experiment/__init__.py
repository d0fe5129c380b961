"""End-to-end experiments: the low-resource study (paper section 5.1) and ablations (section 5.4)."""
