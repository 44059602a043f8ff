"""What the three Meta adapters share: webhook shapes, signatures, the Graph API client."""
