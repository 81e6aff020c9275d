"""``vbench evaluate``'s library: protocols, metrics, the output folder, the loop, data sets, video."""
