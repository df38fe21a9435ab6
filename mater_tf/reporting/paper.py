"""The paper's numbers (Ghaleb et al., ICIP 2020), in one place, keyed by row.

Table 1: AV accuracy (%) by dataset, windowing, PE and MHSA.
Table 3: A (audio), V (video) and AV accuracy (%) with and without attention
("without" is the baseline with neither PE nor MHSA: its AV equals Table 1's).
"""

TABLE1 = {
    # key: (dataset, windows, seconds, PE, MHSA, AV accuracy %)
    "ravdess-8x0.5-pe-mhsa": ("RAVDESS", 8, 0.5, True, True, 76.3),
    "ravdess-8x0.5-pe": ("RAVDESS", 8, 0.5, True, False, 70.6),
    "ravdess-8x0.5-mhsa": ("RAVDESS", 8, 0.5, False, True, 75.2),
    "ravdess-8x0.5-none": ("RAVDESS", 8, 0.5, False, False, 69.4),
    "ravdess-16x0.25-pe-mhsa": ("RAVDESS", 16, 0.25, True, True, 74.4),
    "ravdess-16x0.25-none": ("RAVDESS", 16, 0.25, False, False, 66.2),
    "cremad-6x0.5-pe-mhsa": ("CREMA-D", 6, 0.5, True, True, 67.2),
    "cremad-6x0.5-pe": ("CREMA-D", 6, 0.5, True, False, 64.4),
    "cremad-6x0.5-mhsa": ("CREMA-D", 6, 0.5, False, True, 65.0),
    "cremad-6x0.5-none": ("CREMA-D", 6, 0.5, False, False, 61.8),
    "cremad-12x0.25-pe-mhsa": ("CREMA-D", 12, 0.25, True, True, 66.4),
    "cremad-12x0.25-none": ("CREMA-D", 12, 0.25, False, False, 58.3),
}

TABLE3 = {
    # key: (dataset, attention, A %, V %, AV %)
    "ravdess-attention": ("RAVDESS", True, 59.2, 58.2, 76.3),
    "ravdess-no-attention": ("RAVDESS", False, 60.7, 56.0, 69.4),
    "cremad-attention": ("CREMA-D", True, 57.5, 51.7, 67.2),
    "cremad-no-attention": ("CREMA-D", False, 56.0, 49.0, 61.8),
}
