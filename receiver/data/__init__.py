"""Files shipped with the package: the seed callback of QualityMax's document."""
