"""Identity (SPEC §8): visitors linked to customer keys, winners of conflicts, resolution."""
