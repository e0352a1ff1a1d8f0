"""The embedded image scanner: inventories of image layers (scan/inventory.py, scan/analyzers/),
an advisory database (scan/vulndb/), the matcher between the two (scan/matcher.py) and SBOMs
(scan/sbom.py). Everything here is free of the registry's storage and database: the scan service
(scan/service.py) hands it layer streams and stores what it returns."""
