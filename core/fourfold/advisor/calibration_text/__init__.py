"""Sample text for ``fourfold calibrate``: consumer-health pages written for fourfold
(copies of a few of deploy/manifests/medical/knowledge; illustrative, not medical advice)."""
