"""The hostile suite (issue 5): broken and malicious submissions through the Gradescope entry
point, with nothing forged, leaked or lost. See cases.py for the table and harness.py for how
each run is laid out and graded."""
