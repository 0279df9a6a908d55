"""Support code shipped with every notebook: data, gradient checking, plots. No answers here."""
