"""Privacy operations on a resident's data, composed from each domain's part: the data
export (``export``), the usage record (``history``) and account deletion
(``deletion``). Each domain writes its own part in its own package (``export_resident``,
``forget_resident``, history rows); the lists here ask every one of them, so a new
domain adds its part and one line."""
