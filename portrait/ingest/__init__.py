"""File ingestion: format readers (:mod:`.formats`), validation rules (:mod:`.validate`), identity stitching
(:mod:`.identity`) and the load stage that writes the contract tables (:mod:`.load`)."""
