"""The consortium's data exchange (データ流通): registered data member companies
contribute about residents, released to other companies only on the resident's
consent per data link.

The model is seed 004's (Dot to Dot) and the draft terms' item 5
(shared/seeds/000: 「…民間推進体制各社から収集した登録データを提供します」):

- ``categories``  what kinds of registered data the consortium keeps (language,
                  household, occupation, …): a JSON Schema for a value, a
                  sensitivity, a retention period, and whether it may feed the
                  city's statistics;
- ``contracts``   a company contributes or receives a category only under a
                  data-use contract in force that names it (purpose, retention,
                  liability, audit rights, breach contact, validity dates);
- ``records``     what a company contributed about a resident, addressed by
                  that company's own pairwise ``sub``, with its provenance;
- ``links``       a data link: one source company's records of one category
                  released to one recipient service, with the expiry the
                  resident chose; withdrawn on its own.

Companies never learn each other's identifiers: a contribution names the
resident by the contributor's ``sub``, a release carries the recipient's
``sub`` and the source's company name only (identifier translation, seed 004).
"""
